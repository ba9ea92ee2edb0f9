"""The order loads are served in: mode urgency first, then priority (1 = most important), then id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.models.settings import Mode

if TYPE_CHECKING:
    from .views import LoadView

#: A load that must run (boiler below its minimum temperature) is served before every mode.
MUST_RUN_URGENCY = 0
URGENCY: dict[Mode, int] = {
    Mode.STANDARD: 1,
    Mode.CONTINUOUS: 1,
    Mode.SOLAR_PRIORITY: 2,
    Mode.SOLAR_ONLY: 3,
    Mode.EXCESS: 4,
    Mode.OFF: 9,
}


def urgency_of(mode: Mode, must_run: bool) -> int:
    """Smaller is served first."""
    return MUST_RUN_URGENCY if must_run else URGENCY[mode]


def order_key(load: LoadView) -> tuple[int, int, str, int]:
    return (load.urgency, load.priority, load.id, load.index)


def in_order(loads: list[LoadView]) -> list[LoadView]:
    """The loads sorted by urgency, priority, id (a total order: ids are unique per site)."""
    return sorted(loads, key=order_key)
