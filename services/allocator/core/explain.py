"""Reasons and sentences: why each load got what it got, and a readable table of a whole allocation."""

from __future__ import annotations

from shared.models.allocation import Allocation
from shared.models.base import Phase
from shared.models.load import LoadStatus
from shared.models.setpoint import Reason

from .restart import RESTART_MARGIN
from .views import EPS, LoadView

#: The reasons that name a limit (a fuse phase, a circuit, the import power, the imbalance) holding a load back.
_LIMITS = (
    Reason.FUSE_LIMIT, Reason.CIRCUIT_LIMIT, Reason.IMPORT_LIMIT, Reason.IMBALANCE_LIMIT, Reason.GRID_OPERATOR_LIMIT
)


def _a(value: float) -> str:
    return f"{value:.1f} A"


def final_reason(load: LoadView, amount: float) -> Reason:
    """The reason a competing load ends with, from what the raw allocation, the timers and the refit left."""
    reason = load.reason
    if amount <= EPS:
        if reason is Reason.SURPLUS_LIMIT:
            return Reason.WAITING_FOR_SURPLUS
        if reason in (Reason.FUSE_LIMIT, Reason.CIRCUIT_LIMIT, Reason.IMPORT_LIMIT) and load.room > EPS:
            return Reason.BELOW_MINIMUM
        if reason is Reason.OK:
            return Reason.BELOW_MINIMUM
        return reason
    if reason in (Reason.MIN_RUN, Reason.GRACE):
        return reason
    if load.cap + EPS < load.maximum and amount + EPS >= load.quantize(load.cap):
        return Reason.RAMP
    if amount + EPS >= load.maximum or (reason is Reason.OK and load.cap + EPS >= load.maximum):
        return Reason.MUST_RUN if load.must_run else Reason.OK
    return reason


def _limit_words(load: LoadView) -> str:
    reason = load.reason
    s = load.subject
    if reason is Reason.FUSE_LIMIT:
        return f"the fuse on phase {s}"
    if reason is Reason.CIRCUIT_LIMIT:
        return f"circuit {s}"
    if reason is Reason.IMPORT_LIMIT:
        return "the maximum import power"
    if reason is Reason.IMBALANCE_LIMIT:
        return f"the phase imbalance limit ({s})"
    if reason is Reason.GRID_OPERATOR_LIMIT:
        return f"the grid operator's limit ({s})"
    return "the limits"


def sentence(load: LoadView, reason: Reason, amount: float, stale_why: str = "") -> str:
    """One sentence a user can read in a dashboard."""
    got = _a(amount)
    legs = f" on {load.label}" if load.label else ""
    room = max(load.room, 0.0)
    if reason is Reason.OK:
        return f"gets its maximum {got}{legs}" if amount + EPS >= load.maximum else f"gets {got}{legs}"
    if reason is Reason.MUST_RUN:
        return f"must run: gets {got}{legs} whatever its mode"
    if reason is Reason.GRID_OPERATOR_LIMIT and amount <= EPS and room + EPS < load.floor:
        return f"paused: {_limit_words(load)} allows {_a(room)}, below its {_a(load.floor)} minimum"
    if reason in _LIMITS:
        if amount <= EPS:
            return f"paused: {_limit_words(load)} leaves no room"
        return f"limited to {got}{legs} by {_limit_words(load)}"
    if reason is Reason.BELOW_MINIMUM:
        if load.reason in _LIMITS and room + EPS >= load.floor:  # held back by the restart margin
            return (
                f"paused: {_limit_words(load)} leaves {_a(room)}; a restart needs its {_a(load.floor)} minimum"
                f" and {_a(RESTART_MARGIN)} more"
            )
        if load.reason in _LIMITS:
            return f"paused: {_limit_words(load)} leaves {_a(room)}, below its {_a(load.floor)} minimum"
        return f"paused: less than its {_a(load.floor)} minimum is available"
    if reason is Reason.WAITING_FOR_SURPLUS:
        return f"waiting for surplus: {_a(room)} of solar surplus is below its {_a(load.floor)} minimum"
    if reason is Reason.SURPLUS_LIMIT:
        return f"follows the solar surplus: {got}{legs}"
    if reason is Reason.BATTERY_FIRST:
        why = load.subject or "the battery charges first"
        return f"battery first ({why}): {got}" if amount > EPS else f"battery first: {why}"
    if reason is Reason.NO_EXCESS:
        return f"follows the excess power: {got}{legs}" if amount > EPS else "no excess power: nothing is exported"
    if reason is Reason.MIN_RUN:
        return f"keeps its {got} minimum from the grid: it started less than its minimum run time ago"
    if reason is Reason.GRACE:
        return f"keeps its {got} minimum from the grid during the grace time after the surplus dropped"
    if reason is Reason.MIN_PAUSE:
        return "stays paused until its minimum pause time is over"
    if reason is Reason.AWAITING_FOLLOW:
        where = load.subject or "its phases"
        what = f"stays at {got}{legs}" if amount > EPS else "waits to start"
        return (
            f"{what} until the loads lowered on {where} follow their lower setpoints "
            f"(break before make: no increase counts on current not yet given up)"
        )
    if reason is Reason.RAMP:
        return f"ramping up: {got}{legs} now, more at the next decision"
    if reason is Reason.STALE_DATA:
        what = stale_why or "the grid measurement is unknown"
        return f"{what}: safe minimum {got}" if amount > EPS else f"{what}: paused until fresh data arrives"
    if reason is Reason.OFF:
        return "mode is off"
    if reason is Reason.DISABLED:
        return "disabled in its settings"
    if reason is Reason.IDLE:
        verb = "finishing its session" if load.status is LoadStatus.FINISHING else "idle"
        avail = f"; {_a(load.available)} available if it starts" if load.available is not None else ""
        return f"{verb}{avail}"
    if reason is Reason.UNAVAILABLE:
        if load.unfit:
            return f"cannot run: {load.unfit}"
        return f"{load.status.value}: not counted on"
    return reason.value


def table(allocation: Allocation) -> str:
    """A readable table: one row per load, then the pools, the house load and the headroom per phase."""
    rows = [("load", "mode", "amps", "phases", "reason", "why")]
    for d in allocation.decisions:
        amps = f"{d.current:.1f}" if d.current > 0 or d.available is None else f"0 ({d.available:.1f} avail)"
        rows.append((d.load, d.mode.value, amps, "/".join(p.value for p in d.phases), d.reason.value, d.message))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:5])) + "  " + r[5] for r in rows]
    lines.append("")
    phases = sorted({p for pool in allocation.pools.values() for p in pool} | set(allocation.headroom))
    head = "".ljust(10) + "".join(p.value.rjust(9) for p in phases)
    lines.append(head)

    def row(name: str, values: dict[Phase, float]) -> str:
        return name.ljust(10) + "".join((f"{values[p]:.1f}" if p in values else "-").rjust(9) for p in phases)

    lines.append(row("house", allocation.house))
    for name, pool in allocation.pools.items():
        lines.append(row(name, pool))
    lines.append(row("headroom", allocation.headroom))
    limit = allocation.grid_limit
    if limit is not None and limit.in_force:
        parts = [f"import <= {limit.import_limit_w:.0f} W" if limit.import_limit_w is not None else "",
                 f"each load <= {limit.controllable_cap_w:.0f} W" if limit.controllable_cap_w is not None else "",
                 ", ".join(f"{k} <= {v:.0f} W" for k, v in sorted(limit.load_cap_w.items()))]
        until = f" until {limit.valid_until.isoformat()}" if limit.valid_until is not None else ""
        lines.append("")
        lines.append(f"GRID OPERATOR LIMIT ({limit.origin.value}, {limit.source}): "
                     f"{'; '.join(p for p in parts if p)}{until}")
    if allocation.stale or allocation.message:
        lines.append("")
        lines.append(("STALE: " if allocation.stale else "") + allocation.message)
    return "\n".join(lines)
