"""Departure plans in the allocator service: a ``plan/set`` request turned into a :class:`LoadPlan`, worked out
again from the latest prices, solar forecast, SOC and headroom (:mod:`.planner` does the choosing), and the
setpoint of a load in a planned slot told so.

A plan only ever adds charging: in a planned slot the load is allocated as Standard (grid allowed, at its own
priority, within every hard limit, whatever its mode or a schedule says); outside planned slots its own
mode applies, so surplus charging between the slots still happens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.models import LoadDecision, LoadPlan, LoadState, PlanSet, Reason

from .planner import Rate, active_slot, charge_rate, clock_time, energy_needed, plan
from .state import SiteState

_NO_STATE = Rate(0.0, 0.0, None, "the load has not reported its state yet")


def requested(site: str, load: str, command: PlanSet, state: LoadState | None, now: datetime) -> LoadPlan:
    """A new plan from a ``plan/set``, not yet worked out (no slots)."""
    return LoadPlan(ts=now, site=site, load=load, target_soc=command.target_soc, capacity_wh=command.capacity_wh,
                    target_energy_wh=command.target_energy_wh, deadline=command.deadline,
                    transaction=command.transaction,
                    energy_at_start_wh=state.energy if state is not None else None)


def _label(request: LoadPlan) -> str:
    if request.target_soc is not None:
        return f"{request.target_soc:g} % by {clock_time(request.deadline, request.deadline)}"
    return f"{(request.target_energy_wh or 0.0) / 1000:.1f} kWh by {clock_time(request.deadline, request.deadline)}"


def worked_out(site: SiteState, load: str, request: LoadPlan, now: datetime) -> LoadPlan:
    """The plan for ``request`` from what the site knows now: the energy still needed (SOC or register), the
    rate the fuse allows with the house load of the latest measurement, the price and solar forecasts."""
    entry = site.loads.get(load)
    state = entry.state if entry is not None else None
    need, note = energy_needed(request, state)
    prices = site.prices.slots if site.prices is not None else []
    pv = site.pv_forecast.slots if site.pv_forecast is not None else []
    if state is None:
        result = plan(need, now, request.deadline, prices, _NO_STATE, pv, _label(request))
        current, house = 0.0, None
    else:
        others = [e.state for e in site.loads.values() if e.state is not None]
        rate = charge_rate(state, entry.settings if entry is not None else None, site.settings, site.measurement,
                           others)
        result = plan(need, now, request.deadline, prices, rate, pv, _label(request))
        current, house = rate.current, rate.house
    message = result.message if not note else f"{result.message} ({note})"
    if not prices and need > 0:
        message += " (no price forecast on the prices topic: every slot costs the same)"
    return request.model_copy(update={
        "ts": max(now, request.ts), "energy_needed_wh": round(need, 1), "current": round(current, 1),
        "house_estimate": None if house is None else round(house, 1), "slots": result.slots,
        "expected_cost": result.expected_cost, "currency": result.currency,
        "expected_finish": result.expected_finish, "feasible": result.feasible,
        "shortfall_wh": result.shortfall_wh, "message": message[:1000]})


#: A SOC this far (%) from the one a plan was worked out with replans at once (else at ``plan_interval``).
SOC_STEP = 1.0


def soc_moved(planned: float | None, soc: float | None) -> bool:
    """Whether a load's new SOC should replan its plan now."""
    if planned is None or soc is None:
        return planned != soc
    return abs(soc - planned) >= SOC_STEP


def content(load_plan: LoadPlan | None) -> dict[str, Any] | None:
    """What a plan says, without its stamp: published again only when this changed."""
    return None if load_plan is None else load_plan.model_dump(exclude={"ts"})


def explained(decision: LoadDecision, load_plan: LoadPlan, now: datetime) -> LoadDecision:
    """A planned load's decision with reason ``planned_charging`` where the core gave it what it asked
    (a limit — the fuse, a circuit — keeps its own reason: it says more)."""
    slot = active_slot(load_plan, now)
    if slot is None or decision.reason is not Reason.OK:
        return decision
    price = f" at {slot.price:g} {load_plan.currency}/kWh" if slot.price is not None and load_plan.currency else ""
    message = (f"charging in a planned slot until {clock_time(slot.end, load_plan.deadline)}{price} (departure plan: "
               f"{_label(load_plan)})")
    return decision.model_copy(update={"reason": Reason.PLANNED_CHARGING, "message": message})
