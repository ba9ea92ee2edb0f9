"""Anti-flicker: smoothing of the surplus pool, and the timers around the raw allocation.

Driven only by the memory the previous decision left (:class:`LoadMemory`, :class:`SiteMemory`), the site's
:class:`Timers` and ``now``:

* **smoothing** — the solar surplus follows a decrease at once and an increase by the factor
  ``surplus_smoothing`` (1 = at once); a raw increase of the netted surplus smaller than
  ``surplus_dead_band`` keeps the previous figures (see :func:`smooth_surplus`).
* **min_run** — a running load that the raw allocation pauses for lack of surplus/excess (reasons
  waiting_for_surplus, surplus_limit, battery_first, no_excess) keeps its minimum until it has run
  ``min_run`` seconds since it (re)started.
* **grace** — after that, the same load keeps its minimum for ``grace`` seconds after the surplus first fell
  short (``LoadMemory.short_since``), then pauses.
* **min_pause** — a paused load does not restart before ``min_pause`` seconds since it paused: it does not
  compete at all, so what it cannot take goes to the others.
* **ramp** — an increase is at most ``ramp_step`` A per decision above the larger of what the load had and
  what it draws now (a paused load starts at its minimum; a
  stepped load may always go up one step; on/off loads switch whole); cuts are immediate. The ramp is a cap
  on the load's maximum for this decision, known beforehand, so the rest of the budget goes to the others.

A user's mode change (``LoadMemory.mode`` differs from the mode now) or ``must_run`` overrides min_run,
grace and min_pause; ``allow_grid_charging=False`` means no holds (they would import the minimum); a
fault, an unavailable device, stale data, Off and disabled are never held. Holds take from the grid: they
are *wishes* — the safety refit (:mod:`.safety`) fits them after every load that is not held, within the
hard limits only, so a hold never pushes a phase or a circuit over its limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.models.allocation import LoadMemory
from shared.models.base import Phase
from shared.models.load import LoadKind
from shared.models.setpoint import Reason
from shared.models.settings import Timers

from .follow import remember
from .output import construct
from .views import EPS, LoadView

#: Raw reasons that mean "paused for lack of solar surplus or excess" (the only pauses timers may hold).
SURPLUS_REASONS = frozenset({Reason.SURPLUS_LIMIT, Reason.WAITING_FOR_SURPLUS, Reason.BATTERY_FIRST, Reason.NO_EXCESS})
INF = float("inf")


def smooth_surplus(
    raw: dict[Phase, float], previous: dict[Phase, float], alpha: float, dead_band: float
) -> dict[Phase, float]:
    """The solar surplus per phase the loads may use, smoothed against the previous decision's.

    The test is on the raw change of the netted surplus (the sum over the phases, as the meter nets it): a
    decrease is followed at once (the site must not import for what the loads were given); an increase
    smaller than ``dead_band`` keeps the previous figures; a larger one moves by the smoothing factor
    ``alpha`` and lands on the raw figures once it is within the dead band of them. Without a complete
    history (a phase with no previous figure) the raw figures are taken."""
    if any(p not in previous for p in raw):
        return dict(raw)
    change = sum(raw.values()) - sum(previous[p] for p in raw)
    if change < 0.0:
        return dict(raw)
    if change < dead_band:
        return {p: previous[p] for p in raw}
    if alpha >= 1.0 or (1.0 - alpha) * change < dead_band:
        return dict(raw)
    return {p: alpha * value + (1.0 - alpha) * previous[p] for p, value in raw.items()}


def _seconds(now: datetime, since: datetime | None) -> float:
    return INF if since is None else (now - since).total_seconds()


def before_allocation(loads: list[LoadView], now: datetime, timers: Timers) -> list[LoadView]:
    """min_pause and ramp, known before the allocation: the loads that may compete, each with its ``cap``.

    A paused load within its minimum pause does not compete (reason min_pause), and an increase is capped
    at ``ramp_step`` above what the load had — so the budget they cannot use this time goes to the others.
    """
    competing: list[LoadView] = []
    step = timers.ramp_step
    for load in loads:
        mem = load.memory
        running = mem.current > EPS or mem.on
        override = load.must_run or (mem.mode is not None and mem.mode is not load.mode)
        if (
            not running
            and not override
            and mem.paused_since is not None
            and _seconds(now, mem.paused_since) < timers.min_pause
        ):
            load.reason = Reason.MIN_PAUSE
            load.target = 0.0
            continue
        if load.kind is not LoadKind.ONOFF:
            # From what it had or what it draws now, whichever is more: a load found running (a restart
            # without memory) is not cut to the ramp step.
            start = mem.current if running else 0.0
            for p, amps in load.draw.items():
                if amps > start and p in load.weight_map:
                    start = amps
            cap = max(start + step, load.floor)
            if load.steps:
                for s in load.steps:
                    if s > start + EPS:
                        cap = max(cap, s)
                        break
            if cap < load.cap:
                load.cap = cap
        competing.append(load)
    return competing


def after_allocation(loads: list[LoadView], now: datetime, timers: Timers, allow_grid: bool = True) -> None:
    """min_run and grace: turn each competing load's raw ``amount`` into its ``target`` (held or not).

    A hold takes the minimum from the grid, so none is made where the site allows no grid charging."""
    for load in loads:
        raw = load.amount
        target = raw
        mem = load.memory
        running = mem.current > EPS or mem.on
        override = load.must_run or (mem.mode is not None and mem.mode is not load.mode)
        holdable = allow_grid and not override and load.floor > EPS
        if running and raw <= EPS and load.reason in SURPLUS_REASONS and holdable:
            since = mem.short_since or now
            if _seconds(now, mem.active_since) < timers.min_run:
                target, load.hold, load.reason, load.short_since = load.floor, True, Reason.MIN_RUN, since
            elif _seconds(now, since) < timers.grace:
                target, load.hold, load.reason, load.short_since = load.floor, True, Reason.GRACE, since
        load.target = target


def next_memory(load: LoadView, amount: float, now: datetime) -> LoadMemory:
    """What this decision leaves for the next one about the load."""
    mem = load.memory
    running = mem.current > EPS or mem.on
    on = amount > 0.0
    if on:
        active_since = mem.active_since if running and mem.active_since is not None else now
        paused_since = None
    elif running:
        active_since, paused_since = None, now
    else:
        active_since, paused_since = None, mem.paused_since
    short_since = load.short_since if on else None
    lowered_from, raised_from, changed_at = remember(load, amount, now)
    return _updated(mem, current=amount, on=on, active_since=active_since, paused_since=paused_since,
                    short_since=short_since, mode=load.mode, lowered_from=lowered_from, raised_from=raised_from,
                    changed_at=changed_at)


def fresh_memory(load: LoadView, now: datetime | None = None) -> LoadMemory:
    """Memory of a load that is not competing (idle, faulted, unavailable): the timers start over.

    ``now`` given (an idle or finishing load): a lowering to 0 is remembered for break before make."""
    mem = load.memory
    lowered_from, raised_from, changed_at = remember(load, 0.0, now) if now is not None else (None, None, None)
    return _updated(mem, current=0.0, on=False, active_since=None, paused_since=None, short_since=None,
                    mode=load.mode, lowered_from=lowered_from, raised_from=raised_from, changed_at=changed_at)


def _updated(mem: LoadMemory, **values: Any) -> LoadMemory:
    """``mem`` with ``values`` (the fields not named, phase switching's, kept); ``mem`` itself when none
    changed (models are immutable: sharing is safe)."""
    if all(getattr(mem, name) == value for name, value in values.items()):
        return mem
    return construct(LoadMemory, {**mem.__dict__, **values})
