"""``allocate(snapshot, now) -> Allocation``: the whole decision for one site, as a pure function.

Steps: flatten the loads (:mod:`.views`); house load, freshness and pools (:mod:`.pools`); the competing loads
in order (:mod:`.ordering`) share the budget by the site's strategy (:mod:`.strategies`) — or, with stale data,
get only a safe minimum; the timers (:mod:`.stability`) keep loads in their minimum pause out and cap ramping
loads before the strategy, and hold minimums (min_run, grace) after it; the safety refit fits the targets into
the hard limits on a fresh budget (:mod:`.safety`); idle loads get their ``available`` figure; every load gets
a reason and a sentence (:mod:`.explain`). See the package docstring for the rules this module decides.
"""

from __future__ import annotations

from datetime import datetime

from shared.models.allocation import Allocation, LoadDecision, SiteMemory, Snapshot
from shared.models.load import LoadStatus
from shared.models.setpoint import Reason
from shared.models.settings import Mode, SiteSettings

from .budget import Budget
from .explain import final_reason, sentence
from .external_limit import OperatorLimit, cap_loads, decision_reason, limit_in_force, lower_import, relabel
from .external_limit import state as limit_state
from .follow import NOT_COUNTED, judge
from .ordering import in_order
from .output import construct
from .phases import decide_phases, phase_memory, switch_sentence
from .pools import Pools, clamp, compute_pools, report
from .restart import hold_back_restarts
from .safety import grant, guarded_room, refit
from .stability import after_allocation, before_allocation, fresh_memory, next_memory
from .strategies import EXCESS, GRID, SOLAR, SOLAR_PRIORITY, STRATEGIES, room_for
from .views import EPS, LoadView, build_views


def pool_of(load: LoadView, settings: SiteSettings) -> str:
    """Which pool the load's mode draws on (``allow_grid_charging=False``: Standard and Solar Priority
    behave as Solar Only; must-run and Continuous loads are exempt)."""
    mode = load.mode
    if load.must_run or mode is Mode.CONTINUOUS:
        return GRID
    if mode is Mode.STANDARD:
        return GRID if settings.allow_grid_charging else SOLAR
    if mode is Mode.SOLAR_PRIORITY:
        return SOLAR_PRIORITY if settings.allow_grid_charging else SOLAR
    if mode is Mode.SOLAR_ONLY:
        return SOLAR
    return EXCESS


def _guard(allowed: list[LoadView], views: list[LoadView], settings: SiteSettings, pools: Pools) -> Budget | None:
    """The break-before-make budget, when a load may go up while another goes down or is still following."""
    if not any(load.target > load.memory.current + EPS for load in allowed):
        return None
    if not any(view.pending or view.unsure > EPS or view.reserved > view.target + EPS for view in views):
        return None
    return Budget.start(settings, pools, views, guard=True)


def _final_fit(allowed: list[LoadView], views: list[LoadView], settings: SiteSettings, pools: Pools) -> Budget:
    """The safety refit, guarded (:mod:`.safety`) when a decrease may be counted on by an increase.

    Without a planned decrease the refit runs unguarded; if it still cuts a load below its reservation while
    it lets another go up, it runs again with the guard (the common decision pays for one refit)."""
    guard = _guard(allowed, views, settings, pools)
    if guard is not None:
        final = Budget.start(settings, pools, views)
        refit(allowed, final, guard)
        return final
    saved = [(load.hold, load.reason, load.subject, load.room) for load in allowed]
    final = Budget.start(settings, pools, views)
    refit(allowed, final)
    if any(load.amount + EPS < load.reserved for load in allowed) and any(
        load.amount > load.memory.current + EPS for load in allowed
    ):
        for load, (hold, reason, subject, room) in zip(allowed, saved, strict=True):
            load.hold, load.reason, load.subject, load.room = hold, reason, subject, room
        final = Budget.start(settings, pools, views)
        refit(allowed, final, Budget.start(settings, pools, views, guard=True))
    return final


def _stale_minimums(
    loads: list[LoadView], budget: Budget, guard: Budget | None, pools: Pools, settings: SiteSettings,
    operator_import: bool = False,
) -> None:
    """Unknown data: a safe minimum only where it is known to fit (all its phases measured, no limit unknown)."""
    known = pools.known
    all_known = len(known) == len(pools.phases)
    unknown_limits = settings.max_import_power is not None or operator_import or (
        settings.imbalance_limit is not None and len(pools.phases) > 1 and not all_known
    )
    for load in loads:
        load.reason = Reason.STALE_DATA
        load.amount = 0.0
        if unknown_limits or load.pool not in (GRID, SOLAR_PRIORITY):
            continue
        if any(p not in known for p, _ in load.weights):
            continue
        room = guarded_room(load, budget, guard)[0]
        if room + EPS >= load.floor:
            grant(load, budget, guard, load.floor)


_GONE = NOT_COUNTED
_RESTING = frozenset({LoadStatus.IDLE, LoadStatus.FINISHING})


def _idle_reason(load: LoadView) -> Reason | None:
    """The reason of a load that does not compete for the budget (None: it competes)."""
    if not load.enabled:
        return Reason.DISABLED
    status = load.status
    if load.unfit is not None or status in _GONE:
        return Reason.UNAVAILABLE
    if status in _RESTING:
        return Reason.IDLE
    if load.mode is Mode.OFF and not load.must_run:
        return Reason.OFF
    return None


def _decision(view: LoadView, pools: Pools, final: Budget, now: datetime, limit: OperatorLimit) -> LoadDecision:
    """One load's decision: amount, reason, sentence, ``available`` for idle loads, memory for the next one."""
    idle_reason = _idle_reason(view)
    message = ""
    if idle_reason is None and view.switch_pause:
        amount = 0.0
        reason = Reason.PHASE_SWITCH
        message = switch_sentence(view)
        # a pause to switch is not a stop of its mode: no minimum pause after it
        memory = next_memory(view, amount, now).model_copy(update={"paused_since": None, "active_since": None})
    elif idle_reason is None:
        amount = view.amount
        reason = Reason.STALE_DATA if pools.stale else final_reason(view, amount)
        reason = decision_reason(limit, view, reason, amount)
        memory = next_memory(view, amount, now)
    else:
        amount = 0.0
        reason = idle_reason
        if idle_reason is Reason.IDLE and not pools.stale and (view.mode is not Mode.OFF or view.must_run):
            view.amount = 0.0
            room = room_for(view, final, pools)[0]
            view.available = view.quantize(room) if room + EPS >= view.floor else 0.0
        stopped = idle_reason in (Reason.DISABLED, Reason.OFF)
        if stopped:
            memory = next_memory(view, 0.0, now)
        else:  # a lowering to 0 is remembered (break before make), but not for a faulted or unavailable load
            memory = fresh_memory(view, None if view.status in NOT_COUNTED else now)
    if view.phase_choice is not None:
        memory = phase_memory(view, memory)
    if not message:
        message = sentence(view, reason, amount, pools.stale_why)
        if view.phase_note:
            message = f"{message}; {view.phase_note}"
    return construct(
        LoadDecision,
        {
            "load": view.id,
            "current": amount,
            "phases": list(view.weight_map),
            "on": amount > 0.0,
            "available": view.available,
            "mode": view.mode,
            "reason": reason,
            "message": message,
            "memory": memory,
        },
    )


def allocate(snapshot: Snapshot, now: datetime) -> Allocation:
    """The decision for one site at ``now``: pure, deterministic, within every hard limit."""
    if now.tzinfo is None:
        raise ValueError("allocate: now must be timezone-aware")
    settings = snapshot.settings
    views = build_views(settings, snapshot.loads)
    judge(views, settings.timers, now)
    pools = compute_pools(settings, snapshot.measurement, views, snapshot.memory, now)
    limit = limit_in_force(snapshot.grid_limit, now)  # the grid operator's, above every mode and priority
    cap_loads(limit, views, settings.voltage)
    lower_import(limit, pools, settings)
    for view in views:
        view.pool = pool_of(view, settings)
    if decide_phases(views, pools, settings.timers, tuple(settings.phases), now):
        judge(views, settings.timers, now)  # a switched load claims on its new phases; its old ones: house load
        pools = compute_pools(settings, snapshot.measurement, views, snapshot.memory, now)
        lower_import(limit, pools, settings)
    competing = in_order([v for v in views if v.wants_power and v.index not in limit.paused and not v.switch_pause])
    if pools.stale:
        final = Budget.start(settings, pools, views)
        allowed = before_allocation(competing, now, settings.timers)
        for load in allowed:
            load.target = load.floor
        guard = _guard(allowed, views, settings, pools)
        operator_import = limit.in_force and limit.values.import_limit_w is not None
        _stale_minimums(allowed, final, guard, pools, settings, operator_import)
    else:
        budget = Budget.start(settings, pools, views)
        allowed = hold_back_restarts(before_allocation(competing, now, settings.timers), budget)
        STRATEGIES[settings.strategy](allowed, budget, pools)
        after_allocation(allowed, now, settings.timers, settings.allow_grid_charging)
        final = _final_fit(allowed, views, settings, pools)
        relabel(limit, allowed)

    decisions = [_decision(view, pools, final, now, limit) for view in views]
    running = sum(1 for d in decisions if d.on)
    competing_count = len(competing)
    if pools.stale:
        message = f"stale data ({pools.stale_why}): safe minimums only"
    else:
        paused = competing_count - running
        message = f"{running} running, {paused} paused, {len(views) - competing_count} not competing"
    if pools.battery_note:
        message = f"{message}; {pools.battery_note}"
    grid_limit = None
    if snapshot.grid_limit is not None:
        binding = [d.load for d in decisions if d.reason is Reason.GRID_OPERATOR_LIMIT]
        grid_limit = limit_state(limit, settings.site, now, binding)
        if limit.in_force:
            message = f"{message}; grid operator limit in force ({limit.why})"
    return construct(
        Allocation,
        {
            "site": settings.site,
            "ts": now,
            "decisions": decisions,
            "pools": report(pools),
            "headroom": {p: clamp(v) for p, v in final.phase_left.items()},
            "house": {p: clamp(v) for p, v in pools.house.items()},
            "stale": pools.stale,
            "message": message,
            "memory": construct(
                SiteMemory,
                {
                    "battery_full_latched": pools.latched,
                    "battery_above_target": pools.above_target,
                    "battery_saturated_charge": pools.saturated_charge,
                    "surplus_ema": {p: clamp(v) for p, v in pools.surplus_ema.items()},
                },
            ),
            "grid_limit": grid_limit,
        },
    )
