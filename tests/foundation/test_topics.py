"""The topic tree is built and parsed in one place, and ids follow the contract."""

from __future__ import annotations

import pytest

from shared.topics import Kind, Leaf, TopicError, Topics, slugify

T = Topics("ampmq")


@pytest.mark.parametrize(
    ("topic", "site", "kind", "id", "leaf"),
    [
        (T.measurement("home"), "home", Kind.MEASUREMENT, None, ""),
        (T.site_settings_set("home"), "home", Kind.SETTINGS, None, "set"),
        (T.load_state("home", "garage-ev"), "home", Kind.LOAD, "garage-ev", Leaf.STATE),
        (T.load_settings_set("home", "boiler"), "home", Kind.LOAD, "boiler", "settings/set"),
        (T.connector_meter("home", "cp-1", 2), "home", Kind.CHARGER, "cp-1", "connector/2/meter"),
        (T.charger_command("home", "cp-1", "SetChargingProfile"), "home", Kind.CHARGER, "cp-1",
         "cmd/SetChargingProfile"),
        (T.meter_availability("home", "grid"), "home", Kind.METER, "grid", Leaf.AVAILABILITY),
        (T.errors("home"), "home", Kind.ERRORS, None, ""),
    ],
)
def test_built_topics_parse_back(topic: str, site: str, kind: str, id: str | None, leaf: str) -> None:
    ref = T.parse(topic)
    assert (ref.site, ref.kind, ref.id, ref.leaf) == (site, kind, id, leaf)


def test_service_topics_have_no_site() -> None:
    ref = T.parse(T.service_availability("allocator"))
    assert ref.site is None and ref.id == "allocator" and ref.leaf == "availability"


@pytest.mark.parametrize("bad", ["Home", "home/x", "", "a b", "x" * 65, "-lead", "services"])
def test_invalid_site_ids_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        T.measurement(bad)


@pytest.mark.parametrize("topic", ["other/home/measurement", "ampmq/home", "ampmq/home/nonsense/x",
                                   "ampmq/home/load/ev", "ampmq/HOME/measurement"])
def test_foreign_topics_do_not_parse(topic: str) -> None:
    with pytest.raises(TopicError):
        T.parse(topic)


def test_wildcard_filters() -> None:
    assert T.load_filter(Leaf.STATE) == "ampmq/+/load/+/state"
    assert Topics("house/energy").measurement_filter() == "house/energy/+/measurement"


def test_root_is_configurable_and_checked() -> None:
    assert Topics("x").measurement("s") == "x/s/measurement"
    with pytest.raises(TopicError):
        Topics("bad/#")


@pytest.mark.parametrize(("raw", "slug"), [("CP_001", "cp-001"), ("Wallbox Garage", "wallbox-garage"),
                                            ("abc", "abc")])
def test_slugify(raw: str, slug: str) -> None:
    assert slugify(raw) == slug


def test_single_field_set_topics() -> None:
    ref = T.parse(T.load_settings_set_field("home", "ev", "mode"))
    assert (ref.kind, ref.id, ref.leaf) == (Kind.LOAD, "ev", "settings/set/mode")
    assert T.parse(T.site_settings_set_field("home", "fuse_limit")).leaf == "set/fuse_limit"
