"""The last word: fit the targets (after the timers) into the hard limits on a fresh budget.

Loads that are not held come first, in order, then the holds (min_run/grace keep a minimum from the grid
only where it still fits after every load that is not held). Within each group two passes as in the priority
strategy — every floor first, then the rest of each target — so targets the raw allocation made feasible stay
feasible. Whatever does not fit is cut
to a lower step or to 0, never to a value between 0 and the load's minimum.

Break before make (:mod:`.follow`): when a decision raises any load while another holds a reservation, a
second, *guarded* budget counts every other load at max(its amount, its ``reserved`` current). A load may
always keep its previous allocation (decreases are never delayed: the plain budget alone decides how far a
load must come down); above it only as far as the guarded budget allows, so no increase counts on current
another load has not given up yet (reason awaiting_follow).
"""

from __future__ import annotations

from shared.models.setpoint import Reason

from .budget import Budget
from .views import EPS, LoadView


def _cut(load: LoadView, reason: Reason, subject: str, room: float) -> None:
    load.reason, load.subject, load.room = reason, subject, room
    load.hold = False


def _where(reason: Reason, subject: str) -> str:
    if reason is Reason.FUSE_LIMIT:
        return f"phase {subject}"
    if reason is Reason.CIRCUIT_LIMIT:
        return f"circuit {subject}"
    return "the site"


def guarded_room(load: LoadView, budget: Budget, guard: Budget | None) -> tuple[float, Reason, str]:
    """The largest per-leg increase the hard limits allow and, with a guard, break before make too."""
    room, reason, subject = budget.hard_room(load)
    previous = load.memory.current
    if guard is None or load.target <= previous:
        return room, reason, subject  # no increase: break before make has nothing to hold back
    extra, why, what = guard.hard_room(load)
    # The load itself counts at its new amount, every other load at max(its amount, its reservation): the
    # guard's room plus the part of its own reservation it has not used yet. It may always keep what it had.
    free = load.reserved - load.amount
    allowed = (free if free > 0.0 else 0.0) + extra
    kept = previous - load.amount
    if allowed < kept:
        allowed = kept
    if allowed < 0.0:
        allowed = 0.0
    if allowed + EPS < room:
        return allowed, Reason.AWAITING_FOLLOW, _where(why, what)
    return room, reason, subject


def grant(load: LoadView, budget: Budget, guard: Budget | None, total: float) -> None:
    """Raise the load's amount to ``total`` on the budget (and the guard)."""
    delta = total - load.amount
    budget.take(load, delta)
    if guard is not None:
        guard.take_above(load, delta)
    load.amount = total


def refit(loads: list[LoadView], budget: Budget, guard: Budget | None = None) -> None:
    """Set each load's final ``amount`` from its ``target`` within the budget's hard limits (and the guard)."""
    _fit([load for load in loads if not load.hold], budget, guard)
    _fit([load for load in loads if load.hold], budget, guard)


def _fit(loads: list[LoadView], budget: Budget, guard: Budget | None) -> None:
    started: list[LoadView] = []
    for load in loads:
        load.amount = 0.0
        if load.target <= EPS:
            continue
        room, reason, subject = guarded_room(load, budget, guard)
        floor = load.floor
        if room + EPS >= floor:
            grant(load, budget, guard, floor)
            started.append(load)
        else:
            _cut(load, reason, subject, room)
    for load in started:
        if load.target <= load.amount + EPS:
            continue
        room, reason, subject = guarded_room(load, budget, guard)
        total = load.quantize(min(load.target, load.amount + max(room, 0.0)))
        if total > load.amount:
            grant(load, budget, guard, total)
        if total + EPS < load.target:
            _cut(load, reason, subject, room)
