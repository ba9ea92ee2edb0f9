"""The filter table agrees with MQTT's matching rules, and with aiomqtt's own matcher on random filters."""

from __future__ import annotations

import aiomqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.filters import FilterError, FilterTable

CASES = [
    # filter, topic, matches
    ("a/b/c", "a/b/c", True),
    ("a/b/c", "a/b", False),
    ("a/+/c", "a/x/c", True),
    ("a/+/c", "a/x/y/c", False),
    ("a/+", "a/", True),  # an empty level is a level
    ("a/#", "a", True),  # "#" matches the parent level too
    ("a/#", "a/b/c/d", True),
    ("a/#", "b", False),
    ("#", "anything/at/all", True),
    ("#", "$SYS/broker/uptime", False),  # wildcards at the first level skip $ topics
    ("+/broker/uptime", "$SYS/broker/uptime", False),
    ("$SYS/#", "$SYS/broker/uptime", True),
    ("$SYS/+/uptime", "$SYS/broker/uptime", True),
    ("root/+/dev/+/set-point", "root/home/dev/boiler/set-point", True),
    ("root/+/dev/+/set-point", "root/home/dev/boiler/status", False),
]


@pytest.mark.parametrize(("topic_filter", "topic", "matches"), CASES)
def test_mqtt_matching_rules(topic_filter: str, topic: str, matches: bool) -> None:
    table: FilterTable[str] = FilterTable()
    table.add(topic_filter, "item")
    assert table.match(topic) == (["item"] if matches else [])


def test_every_matching_item_in_the_order_added() -> None:
    table: FilterTable[int] = FilterTable()
    for n, topic_filter in enumerate(["root/#", "root/s/dev/+/set-point", "x/#", "root/s/dev/l/set-point",
                                      "root/s/dev/l/set-point", "+/+/+/+/+"]):
        table.add(topic_filter, n)
    assert table.match("root/s/dev/l/set-point") == [0, 1, 3, 4, 5]
    assert len(table) == 5  # distinct filters


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", "a/+b"])
def test_a_misplaced_wildcard_is_refused(bad: str) -> None:
    with pytest.raises(FilterError):
        FilterTable[str]().add(bad, "item")


LEVEL = st.sampled_from(["a", "b", "", "$x"])
# aiomqtt's matcher ignores the $ rule (the table above checks it): no $ topic at the first level here
TOPICS = st.lists(LEVEL, min_size=1, max_size=4).map("/".join).filter(lambda t: t and not t.startswith("$"))
FILTERS = st.tuples(st.lists(st.sampled_from(["a", "b", "", "+", "$x"]), min_size=1, max_size=4),
                    st.booleans()).map(lambda parts: "/".join(parts[0] + (["#"] if parts[1] else []))).filter(bool)


@settings(max_examples=300, deadline=None)
@given(st.lists(FILTERS, min_size=1, max_size=8), TOPICS)
def test_agrees_with_aiomqtt(filters: list[str], topic: str) -> None:
    table: FilterTable[int] = FilterTable()
    for n, topic_filter in enumerate(filters):
        table.add(topic_filter, n)
    expected = [n for n, topic_filter in enumerate(filters) if aiomqtt.Topic(topic).matches(topic_filter)]
    assert table.match(topic) == expected
