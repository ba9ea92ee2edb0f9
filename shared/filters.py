"""Which of many MQTT topic filters a topic matches, in time that does not grow with the number of filters.

A service with a thousand loads declares thousands of routes (seven per OCPP charger). Testing every filter
against every incoming topic made route lookup the load adapters' hot spot at 1 000 chargers, so filters
live in a tree of topic levels: a lookup walks the topic's levels once, following the exact level, ``+``
and ``#`` branches::

    table: FilterTable[str] = FilterTable()
    table.add("ampmq/+/load/+/setpoint", "setpoints")
    table.add("ampmq/home/#", "home")
    table.match("ampmq/home/load/boiler/setpoint")   # ["setpoints", "home"], in the order they were added

MQTT's rules hold (OASIS MQTT 3.1.1, 4.7): ``#`` also matches its parent level (``a/#`` matches ``a``), and
a topic starting with ``$`` is matched by no filter that starts with a wildcard.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class FilterError(ValueError):
    """A topic filter breaks MQTT's rules for wildcards."""


@dataclass(slots=True)
class _Node(Generic[T]):
    children: dict[str, _Node[T]] = field(default_factory=dict)
    here: list[tuple[int, T]] = field(default_factory=list)  # filters ending at this level
    rest: list[tuple[int, T]] = field(default_factory=list)  # filters ending with "#" below this level


class FilterTable(Generic[T]):
    """Items registered under topic filters; :meth:`match` returns those whose filter matches a topic."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._order = itertools.count()
        self._filters: set[str] = set()

    def __len__(self) -> int:
        return len(self._filters)

    @property
    def filters(self) -> frozenset[str]:
        """Every distinct filter added."""
        return frozenset(self._filters)

    def add(self, topic_filter: str, item: T) -> None:
        levels = validate_filter(topic_filter)
        node = self._root
        entry = (next(self._order), item)
        for i, level in enumerate(levels):
            if level == "#":
                node.rest.append(entry)
                break
            node = node.children.setdefault(level, _Node())
            if i == len(levels) - 1:
                node.here.append(entry)
        self._filters.add(topic_filter)

    def match(self, topic: str) -> list[T]:
        """The items whose filter matches ``topic``, in the order they were added."""
        levels = topic.split("/")
        found: list[tuple[int, T]] = []
        self._walk(self._root, levels, 0, found, topic.startswith("$"))
        if len(found) > 1:
            found.sort(key=lambda entry: entry[0])
        return [item for _, item in found]

    def _walk(self, node: _Node[T], levels: list[str], depth: int, found: list[tuple[int, T]],
              system: bool) -> None:
        wildcards_allowed = not (system and depth == 0)
        if wildcards_allowed:
            found.extend(node.rest)  # "#" matches this level and everything below, the parent level included
        if depth == len(levels):
            found.extend(node.here)
            return
        level = levels[depth]
        exact = node.children.get(level)
        if exact is not None:
            self._walk(exact, levels, depth + 1, found, system)
        if wildcards_allowed and level != "+":
            plus = node.children.get("+")
            if plus is not None:
                self._walk(plus, levels, depth + 1, found, system)


def validate_filter(topic_filter: str) -> list[str]:
    """The filter's levels; :class:`FilterError` when a wildcard is misplaced."""
    if not topic_filter:
        raise FilterError("a topic filter cannot be empty")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise FilterError(f"{topic_filter!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise FilterError(f"{topic_filter!r}: '+' must be a whole level")
    return levels


__all__ = ["FilterError", "FilterTable", "validate_filter"]
