"""Turning an :class:`Allocation` into what the allocator publishes: one retained :class:`Setpoint` per
load and one retained :class:`SiteDecision` per site, each carrying the memory the next decision reads back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.models import Allocation, LoadDecision, Reason, Setpoint, SiteDecision, SiteSettings

#: Reasons that say a load got what its settings ask for, not less because of a limit.
NOT_LIMITED = frozenset({Reason.OK, Reason.OFF, Reason.DISABLED, Reason.IDLE})


def setpoint(site: str, decision: LoadDecision, settings: SiteSettings, now: datetime) -> Setpoint:
    """The setpoint for one load, valid for ``timers.setpoint_lifetime`` from ``now``."""
    power = None
    if decision.current > 0 and decision.phases:
        power = round(min(decision.current * settings.voltage * len(decision.phases), 1_000_000.0), 1)
    return Setpoint(
        ts=now,
        site=site,
        load=decision.load,
        current=decision.current,
        phases=list(decision.phases),
        on=decision.on,
        available=decision.available,
        power=power,
        mode=decision.mode,
        reason=decision.reason,
        message=decision.message,
        valid_until=now + timedelta(seconds=settings.timers.setpoint_lifetime),
        active_since=decision.memory.active_since,
        paused_since=decision.memory.paused_since,
        short_since=decision.memory.short_since,
        lowered_from=decision.memory.lowered_from,
        raised_from=decision.memory.raised_from,
        changed_at=decision.memory.changed_at,
        phase_count=decision.memory.phase_count,
        phase_wish_since=decision.memory.phase_wish_since,
        phase_switches=list(decision.memory.phase_switches),
    )


def site_decision(allocation: Allocation, now: datetime) -> SiteDecision:
    """The site summary: pools, headroom, which load is limited by what, and the site memory."""
    return SiteDecision(
        ts=now,
        site=allocation.site,
        pools={name: dict(per_phase) for name, per_phase in allocation.pools.items()},
        headroom=dict(allocation.headroom),
        limited={d.load: d.reason.value for d in allocation.decisions if d.reason not in NOT_LIMITED},
        stale=allocation.stale,
        message=allocation.message,
        battery_full_latched=allocation.memory.battery_full_latched,
        battery_above_target=allocation.memory.battery_above_target,
        battery_saturated_charge=allocation.memory.battery_saturated_charge,
        surplus_ema=dict(allocation.memory.surplus_ema),
    )
