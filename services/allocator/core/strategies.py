"""What each mode may draw on, and the four strategies that share the budget among the competing loads.

Pools per mode (``LoadView.pool``):

* ``grid`` — Standard, Continuous and must-run loads: everything the hard limits allow.
* ``solar_priority`` — the minimum from anywhere, more only from the solar surplus; only the minimum while
  the battery is below its target SOC.
* ``solar`` — Solar Only: the surplus only; nothing while the battery is below its target SOC.
* ``excess`` — only truly excess power: it starts when the excess covers its minimum; once it runs, it keeps
  at least its minimum while any excess is left (within the hard limits).

Every allocation, whatever its mode, lowers the solar pools too: a Standard load eats the surplus a Solar
load after it would have used. Excess loads share only what every other load has left (:func:`excess_last`).

Strategies (loads arrive sorted: urgency, priority, id):

* **priority** — minimums first, in order; then each load tops up as far as it can, in order.
* **shared** — minimums first, in order; then, per urgency class, one common per-leg level for the whole
  class (the highest level all limits allow, found by bisection), then leftovers in order.
* **sequential_strict** — each load in turn takes all it can; the next gets the rest (if it reaches its minimum).
* **sequential_optimized** — as strict, but each load leaves the next load its minimum when it can do so and
  still run.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.models.setpoint import Reason
from shared.models.settings import Strategy

from .budget import Budget
from .pools import Pools
from .views import EPS, LoadView

GRID = "grid"
SOLAR_PRIORITY = "solar_priority"
SOLAR = "solar"
EXCESS = "excess"

#: Bisection steps of the shared strategy (max 1000 A / 2**24: far below any meter's resolution).
SHARE_STEPS = 24


def room_for(load: LoadView, budget: Budget, pools: Pools) -> tuple[float, Reason, str]:
    """The largest per-leg increase the load's mode and the hard limits allow, and what binds."""
    room, reason, subject = budget.hard_room(load)
    pool = load.pool
    if pool == GRID:
        return room, reason, subject
    legs = load.legs
    if pool == SOLAR:
        if pools.battery_first:
            return 0.0, Reason.BATTERY_FIRST, pools.battery_why
        cap = budget.surplus_left / legs
        if cap < room:
            return cap, Reason.SURPLUS_LIMIT, ""
        return room, reason, subject
    if pool == SOLAR_PRIORITY:
        base = load.floor - load.amount
        if base < 0.0:
            base = 0.0
        if pools.battery_first:
            if base < room:
                return base, Reason.BATTERY_FIRST, pools.battery_why
            return room, reason, subject
        cap = budget.surplus_left / legs
        if cap < base:
            cap = base
        if cap < room:
            return cap, Reason.SURPLUS_LIMIT, ""
        return room, reason, subject
    # Excess.
    if pools.excess_blocked:
        return 0.0, Reason.BATTERY_FIRST, pools.excess_blocked
    cap = budget.excess_left / legs
    if cap <= EPS:
        return 0.0, Reason.NO_EXCESS, ""
    if load.amount <= EPS and cap < load.floor and load.was_running and pools.grid_for_minimums:
        cap = load.floor  # once it runs on excess, at least its minimum while any excess is left
    if cap < room:
        return cap, Reason.NO_EXCESS, ""
    return room, reason, subject


def _offer(load: LoadView, budget: Budget, pools: Pools) -> float:
    room, load.reason, load.subject = room_for(load, budget, pools)
    load.room = room
    return room


def _grant(load: LoadView, budget: Budget, total: float) -> None:
    delta = total - load.amount
    if delta > 0.0:
        budget.take(load, delta)
        load.amount = total


def give_minimums(loads: list[LoadView], budget: Budget, pools: Pools) -> None:
    for load in loads:
        if load.started:
            continue
        room = _offer(load, budget, pools)
        floor = load.floor
        if room + EPS >= floor:
            _grant(load, budget, floor)
            load.started = True


def top_up(loads: list[LoadView], budget: Budget, pools: Pools) -> None:
    for load in loads:
        if not load.started or load.amount >= load.cap:
            continue
        room = _offer(load, budget, pools)
        if room > EPS:
            _grant(load, budget, load.quantize(load.amount + room))


def priority(loads: list[LoadView], budget: Budget, pools: Pools) -> None:
    give_minimums(loads, budget, pools)
    top_up(loads, budget, pools)


def _level_fits(loads: list[LoadView], budget: Budget, pools: Pools, level: float) -> bool:
    trial = budget.copy()
    for load in loads:
        want = load.quantize(level)
        delta = want - load.amount
        if delta > EPS:
            room = room_for(load, trial, pools)[0]
            if room + EPS < delta:
                return False
            trial.take(load, delta)
    return True


def shared(loads: list[LoadView], budget: Budget, pools: Pools) -> None:
    give_minimums(loads, budget, pools)
    start = 0
    while start < len(loads):
        urgency = loads[start].urgency
        end = start
        while end < len(loads) and loads[end].urgency == urgency:
            end += 1
        members = [load for load in loads[start:end] if load.started]
        start = end
        if not members:
            continue
        low, high = 0.0, max(load.cap for load in members)
        if _level_fits(members, budget, pools, high):
            low = high
        else:
            for _ in range(SHARE_STEPS):
                mid = (low + high) / 2.0
                if _level_fits(members, budget, pools, mid):
                    low = mid
                else:
                    high = mid
        for load in members:
            want = load.quantize(low)
            if want > load.amount:
                room = _offer(load, budget, pools)
                if room + EPS >= want - load.amount:
                    _grant(load, budget, want)
        top_up(members, budget, pools)


def sequential_strict(loads: list[LoadView], budget: Budget, pools: Pools) -> None:
    for load in loads:
        room = _offer(load, budget, pools)
        if room > EPS:
            _grant(load, budget, load.quantize(room))


def sequential_optimized(loads: list[LoadView], budget: Budget, pools: Pools) -> None:
    for i, load in enumerate(loads):
        if i + 1 < len(loads):
            following = loads[i + 1]
            trial = budget.copy()
            if room_for(following, trial, pools)[0] + EPS >= following.floor:
                trial.take(following, following.floor)
                room, reason, subject = room_for(load, trial, pools)
                total = load.quantize(room)
                if total > 0.0:
                    # Runs while leaving the next load its minimum.
                    full = _offer(load, budget, pools)
                    if total < load.quantize(full):
                        load.reason, load.subject, load.room = reason, subject, room
                    _grant(load, budget, total)
                    continue
        room = _offer(load, budget, pools)
        if room > EPS:
            _grant(load, budget, load.quantize(room))


StrategyFn = Callable[[list[LoadView], Budget, Pools], None]


def excess_last(strategy: StrategyFn) -> StrategyFn:
    """The strategy for every other load first, then for the Excess loads on what is left: excess is power
    with nowhere else to go, so an Excess load's minimum never comes before a solar load's top-up."""

    def run(loads: list[LoadView], budget: Budget, pools: Pools) -> None:
        if not any(load.pool == EXCESS for load in loads):
            strategy(loads, budget, pools)
            return
        strategy([load for load in loads if load.pool != EXCESS], budget, pools)
        strategy([load for load in loads if load.pool == EXCESS], budget, pools)

    return run


STRATEGIES: dict[Strategy, StrategyFn] = {
    Strategy.PRIORITY: excess_last(priority),
    Strategy.SHARED: excess_last(shared),
    Strategy.SEQUENTIAL_STRICT: excess_last(sequential_strict),
    Strategy.SEQUENTIAL_OPTIMIZED: excess_last(sequential_optimized),
}
