"""Departure plans: which slots a load charges in to reach its target by its deadline, as cheaply as the price
forecast allows (pure, no clock reads, no I/O; the service calls it and publishes the result).

The time from now to the deadline is cut at every price and solar-forecast boundary. Each piece can deliver
``rate × duration``, where the rate is what the **fuse allows** the load, not the charger's maximum
(:func:`charge_rate`: the load's max current capped by ``fuse − margin − house load``, the house load
estimated from the latest measurement). Pieces are taken cheapest first — the grid part of a piece costs its
price, the solar the forecast expects is free (up to the rate) — until they cover the energy needed. Because
each piece counts only what the fuse lets through, a tight fuse makes the plan take more (dearer) slots
instead of missing the deadline; a plan that counted on the charger's maximum would pick too few.

Time without a known price is used only when priced time is not enough. If even every piece together falls
short, the plan charges in all of them and says by how much it will miss (``feasible`` false, a sentence),
as soon as the plan is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from shared.models import LoadPlan, LoadSettings, LoadState, PlannedSlot, PriceSlot, PvSlot, SiteMeasurement
from shared.models import SiteSettings as Site

_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Rate:
    """The charge rate a plan counts on: per-leg current, the power it makes, and the house load it assumed."""

    current: float
    power_w: float
    house: float | None = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of time with one price and one solar figure."""

    start: datetime
    end: datetime
    price: float | None
    solar_w: float = 0.0

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / _HOUR


@dataclass(frozen=True, slots=True)
class PlanResult:
    slots: list[PlannedSlot] = field(default_factory=list)
    expected_cost: float | None = None
    currency: str | None = None
    expected_finish: datetime | None = None
    feasible: bool = True
    shortfall_wh: float = 0.0
    message: str = ""


def clock_time(moment: datetime, zone_of: datetime) -> str:
    """``moment`` as a wall-clock time in the zone (UTC offset) of ``zone_of`` — the deadline as the user gave
    it: ``07:00 UTC`` or ``07:00 +01:00``."""
    local = moment.astimezone(zone_of.tzinfo)
    offset = local.utcoffset()
    if not offset:
        return local.strftime("%H:%M UTC")
    return f"{local.strftime('%H:%M')} {local.strftime('%z')[:3]}:{local.strftime('%z')[3:]}"


def charge_rate(state: LoadState, settings: LoadSettings | None, site: Site, measurement: SiteMeasurement | None,
                others: Sequence[LoadState] = ()) -> Rate:
    """The current the fuse is expected to allow the load: its max current, capped by ``fuse − margin − house``
    on its worst phase. The house load is the latest grid reading less what every load draws (``others``,
    the load itself included); without a reading the house is taken as 0 (the allocator still enforces the
    fuse live). Below the load's minimum the rate is 0: it could not charge at all."""
    max_current = state.max_current
    min_current = state.min_current
    if settings is not None:
        if settings.max_current is not None:
            max_current = min(max_current, settings.max_current)
        if settings.min_current is not None:
            min_current = max(min_current, settings.min_current)
    phases = state.site_phases()
    house: float | None = None
    if measurement is not None:
        per_phase = []
        for phase in phases:
            reading = measurement.grid_current.get(phase)
            if reading is None:
                continue
            draw = sum(load.draw.get(phase, 0.0) for load in others)
            per_phase.append(max(0.0, reading.value - draw))
        house = max(per_phase) if per_phase else None
    allowed = site.fuse_limit - site.margin - (house or 0.0)
    current = min(max_current, allowed)
    if current < min_current or current <= 0:
        return Rate(0.0, 0.0, house, f"the fuse leaves {max(allowed, 0.0):.1f} A, below the load's minimum "
                                     f"{min_current:g} A")
    why = (f"{current:.1f} A (the fuse allows it with the house at {house:.1f} A)" if house is not None and
           current < max_current else f"{current:.1f} A")
    return Rate(current, current * site.voltage * len(phases), house, why)


def energy_needed(plan: LoadPlan, state: LoadState | None) -> tuple[float, str]:
    """Energy (Wh) still to deliver, and a note when it is a guess. A SOC target needs the car's SOC; without
    it the whole target is planned for (arriving early beats arriving short). An energy target counts from
    the load's energy register when the plan was set; without a register nothing counts as delivered."""
    if plan.target_soc is not None and plan.capacity_wh is not None:
        if state is None or state.soc is None:
            return plan.target_soc / 100.0 * plan.capacity_wh, "the car's SOC is unknown: planned for the whole target"
        return max(0.0, (plan.target_soc - state.soc) / 100.0 * plan.capacity_wh), ""
    target = plan.target_energy_wh or 0.0
    if state is None or state.energy is None or plan.energy_at_start_wh is None:
        return target, ""
    return max(0.0, target - max(0.0, state.energy - plan.energy_at_start_wh)), ""


def pieces(now: datetime, deadline: datetime, prices: Sequence[PriceSlot], pv: Sequence[PvSlot] = ()) -> list[Piece]:
    """The time from ``now`` to ``deadline`` cut at every price and solar boundary, each piece with its price
    (None where no slot covers it) and expected solar power."""
    if deadline <= now:
        return []
    cuts = {now, deadline}
    for slot in (*prices, *pv):
        for t in (slot.start, slot.end):
            if now < t < deadline:
                cuts.add(t)
    edges = sorted(cuts)
    result = []
    for start, end in pairwise(edges):
        price = next((s.price for s in prices if s.start <= start and end <= s.end), None)
        solar = next((s.power for s in pv if s.start <= start and end <= s.end), 0.0)
        result.append(Piece(start, end, price, solar))
    return result


def _cost_key(piece: Piece, rate_w: float) -> tuple[int, float, datetime]:
    """Cheapest first: known prices before unknown ones, the grid part's price (solar free), then earliest."""
    if piece.price is None:
        return (1, 0.0, piece.start)
    grid_share = 1.0 - min(piece.solar_w, rate_w) / rate_w
    return (0, piece.price * grid_share, piece.start)


def plan(need_wh: float, now: datetime, deadline: datetime, prices: Sequence[PriceSlot], rate: Rate,
         pv: Sequence[PvSlot] = (), label: str = "the target") -> PlanResult:
    """The cheapest set of slots that delivers ``need_wh`` by ``deadline`` at ``rate`` (see the module)."""
    currency = prices[0].currency if prices else None
    when = clock_time(deadline, deadline)
    if need_wh <= 0:
        return PlanResult(currency=currency, expected_finish=now, message=f"{label} is reached")
    if deadline <= now:
        return PlanResult(currency=currency, feasible=False, shortfall_wh=need_wh,
                          message=f"{label} cannot be reached: the deadline {when} has passed "
                                  f"({need_wh / 1000:.1f} kWh short)")
    timeline = pieces(now, deadline, prices, pv)
    if rate.power_w <= 0:
        return PlanResult(currency=currency, feasible=False, shortfall_wh=need_wh,
                          message=f"{label} cannot be reached by {when}: {rate.why}")
    chosen: dict[datetime, float] = {}  # piece start -> energy planned in it
    left = need_wh
    for piece in sorted(timeline, key=lambda p: _cost_key(p, rate.power_w)):
        if left <= 0:
            break
        energy = min(left, rate.power_w * piece.hours)
        chosen[piece.start] = energy
        left -= energy
    slots: list[PlannedSlot] = []
    cost: float | None = 0.0
    delivered = 0.0
    finish: datetime | None = None
    for piece in timeline:
        if piece.start not in chosen:
            continue
        energy = chosen[piece.start]
        solar = min(piece.solar_w * piece.hours, energy)
        if piece.price is None:
            cost = None
        elif cost is not None:
            cost += (energy - solar) / 1000.0 * piece.price
        delivered += energy
        if finish is None and delivered >= need_wh - 1e-6:
            finish = piece.start + timedelta(hours=energy / rate.power_w)
        slots.append(PlannedSlot(start=piece.start, end=piece.end, current=round(rate.current, 1),
                                 energy_wh=round(energy, 1), solar_wh=round(solar, 1), price=piece.price))
    slots = _merged(slots)
    if cost is not None:
        cost = round(cost, 4)
    priced = f", about {cost:.2f} {currency}" if cost is not None and currency else ""
    if left > 1e-6:
        return PlanResult(slots, cost, currency, None, False, round(left, 1),
                          f"{label} cannot be reached by {when}: at {rate.why} the time left delivers "
                          f"{delivered / 1000:.1f} kWh of the {need_wh / 1000:.1f} kWh needed ({left / 1000:.1f} kWh "
                          "short); charging in every slot until then")
    assert finish is not None
    return PlanResult(slots, cost, currency, finish, True, 0.0,
                      f"{need_wh / 1000:.1f} kWh in {len(slots)} slot(s) at {rate.why}{priced}, done by "
                      f"{clock_time(finish, deadline)}")


def _merged(slots: list[PlannedSlot]) -> list[PlannedSlot]:
    """Adjacent slots with the same price and current joined into one (fewer, readable slots)."""
    merged: list[PlannedSlot] = []
    for slot in slots:
        last = merged[-1] if merged else None
        if last is not None and last.end == slot.start and last.price == slot.price and last.current == slot.current:
            merged[-1] = last.model_copy(update={
                "end": slot.end, "energy_wh": round(last.energy_wh + slot.energy_wh, 1),
                "solar_wh": round(last.solar_wh + slot.solar_wh, 1)})
        else:
            merged.append(slot)
    return merged


def active_slot(load_plan: LoadPlan, now: datetime) -> PlannedSlot | None:
    """The planned slot ``now`` falls in, if any (and the plan still has energy to deliver)."""
    if load_plan.energy_needed_wh <= 0:
        return None
    for slot in load_plan.slots:
        if slot.start <= now < slot.end and slot.current > 0:
            return slot
    return None
