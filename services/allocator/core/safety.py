"""The last word: fit the targets (after the timers) into the hard limits on a fresh budget.

Loads that are not held come first, in order, then the holds (min_run/grace keep a minimum from the grid
only where it still fits after every load that is not held). Within each group two passes as in the priority
strategy — every floor first, then the rest of each target — so targets the raw allocation made feasible stay
feasible. Whatever does not fit is cut
to a lower step or to 0, never to a value between 0 and the load's minimum.
"""

from __future__ import annotations

from shared.models.setpoint import Reason

from .budget import Budget
from .views import EPS, LoadView


def _cut(load: LoadView, reason: Reason, subject: str, room: float) -> None:
    load.reason, load.subject, load.room = reason, subject, room
    load.hold = False


def refit(loads: list[LoadView], budget: Budget) -> None:
    """Set each load's final ``amount`` from its ``target`` within the budget's hard limits."""
    _fit([load for load in loads if not load.hold], budget)
    _fit([load for load in loads if load.hold], budget)


def _fit(loads: list[LoadView], budget: Budget) -> None:
    started: list[LoadView] = []
    for load in loads:
        load.amount = 0.0
        if load.target <= EPS:
            continue
        room, reason, subject = budget.hard_room(load)
        floor = load.floor
        if room + EPS >= floor:
            budget.take(load, floor)
            load.amount = floor
            started.append(load)
        else:
            _cut(load, reason, subject, room)
    for load in started:
        if load.target <= load.amount + EPS:
            continue
        room, reason, subject = budget.hard_room(load)
        total = load.quantize(min(load.target, load.amount + max(room, 0.0)))
        if total > load.amount:
            budget.take(load, total - load.amount)
            load.amount = total
        if total + EPS < load.target:
            _cut(load, reason, subject, room)
