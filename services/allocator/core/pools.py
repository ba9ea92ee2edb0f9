"""House load, data freshness and the three pools (physical, solar surplus, truly excess).

All figures are amps. Per-phase figures are per site phase; the solar pools are *power* pools netted over the
phases (a meter nets export on one phase against import on another), held as "leg-amps": a load drawing
``I`` A on ``k`` legs takes ``k * I`` from them, so a 1-phase load is budgeted on its one phase only.

Sign conventions: grid current import positive, battery power discharge positive. With ``draw`` what the loads'
claims count on the phases they use now (:mod:`.follow`: fresh states only, at most what each load may be
drawing), ``house = grid - draw`` per phase, plus what faulted or unavailable loads may draw on their own
beyond their draw (their ``fallback_current``); ``-house`` summed over the phases
(times the voltage) is what the site would export if the loads drew nothing. That figure still contains
the battery, so

* surplus = export + what the battery is charging - what it is discharging + what it may discharge above its
  target SOC (capped by ``max_discharge_power`` and by the inverter's ``max_power`` less its present output);
* excess  = export - what the battery discharges - the export threshold, and only when the battery is full
  (latched at 100 %, released below 100 % - hysteresis) or charging at its maximum rate; when it is latched
  full, what it still absorbs counts as excess too. A site without a battery: export - threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.models.allocation import SiteMemory
from shared.models.base import Phase
from shared.models.measurement import Reading, SiteMeasurement
from shared.models.settings import BatterySettings, SiteSettings

from .follow import fallback_reserve
from .stability import smooth_surplus
from .views import LoadView

#: A battery charging within this much of its maximum rate counts as charging at its maximum (W, fraction).
AT_MAX_TOLERANCE_W = 50.0
AT_MAX_TOLERANCE_FRACTION = 0.02


#: The battery settings of a site that reports a battery but has none configured (an immutable constant).
DEFAULT_BATTERY = BatterySettings()


@dataclass(slots=True)
class Pools:
    phases: tuple[Phase, ...]
    #: The house's own consumption per known phase (negative: export), with what faulted or unavailable loads
    #: may draw on their own (their fallback) beyond their draw.
    house: dict[Phase, float]
    #: Phases with a fresh grid reading.
    known: frozenset[Phase]
    stale: bool
    stale_why: str
    #: Fuse headroom per known phase for the loads: limit - house.
    physical: dict[Phase, float]
    #: Leg-amps left under max import - buffer for the loads (None: no import limit).
    import_room: float | None
    #: Leg-amps of (smoothed) solar surplus and of truly excess power for the loads.
    surplus: float
    excess: float
    has_battery: bool
    #: The battery is below its target SOC (or its SOC is unknown): battery first.
    battery_first: bool
    battery_why: str
    #: Why there is no excess on a battery site (battery not full and not charging at its max), else "".
    excess_blocked: str
    latched: bool
    surplus_ema: dict[Phase, float]
    #: One line about the battery for the allocation's message ("" without a battery).
    battery_note: str = ""
    #: The site allows grid import for a load's minimum (``allow_grid_charging``).
    grid_for_minimums: bool = True


def _fresh(reading: Reading | None, cutoff: datetime, ahead: datetime) -> bool:
    """Not older than the cutoff and not from the future (stamped beyond ``now + future_tolerance``)."""
    return reading is not None and cutoff <= reading.ts <= ahead


def compute_pools(
    settings: SiteSettings,
    measurement: SiteMeasurement | None,
    views: list[LoadView],
    memory: SiteMemory,
    now: datetime,
) -> Pools:
    phases = tuple(settings.phases)
    limit = settings.fuse_limit - settings.margin
    stale_after = settings.timers.stale_after
    cutoff = now - timedelta(seconds=stale_after)
    ahead = now + timedelta(seconds=settings.timers.future_tolerance)
    voltage = settings.voltage if settings.voltage > 0 else 230.0
    grid: dict[Phase, float] = {}
    problems: list[str] = []
    if measurement is None:
        problems.append("no measurement yet")
    else:
        for p in phases:
            r = measurement.grid_current.get(p)
            if r is None:
                problems.append(f"no grid current on phase {p.value}")
            elif r.ts < cutoff:
                age = (now - r.ts).total_seconds()
                problems.append(f"grid current on phase {p.value} is {age:.0f} s old")
            elif r.ts > ahead:
                early = (r.ts - now).total_seconds()
                problems.append(f"grid current on phase {p.value} is stamped {early:.0f} s in the future")
            else:
                grid[p] = r.value
    drawn = dict.fromkeys(phases, 0.0)
    reserve: dict[Phase, float] = {}
    for view in views:
        # Only on the phases its setpoint covers (a draw elsewhere is not the allocator's to give away), only
        # what the claim counts (:mod:`.follow`); faulted and unavailable loads claim nothing.
        for p, amps in view.claim.items():
            if p in drawn:
                drawn[p] += amps
        if view.fallback > 0.0:
            for p, amps in fallback_reserve(view).items():
                if p in drawn:
                    reserve[p] = reserve.get(p, 0.0) + amps
    # What faulted or unavailable loads may still draw on their own counts as house load too.
    house = {p: grid[p] - drawn[p] + reserve.get(p, 0.0) for p in phases if p in grid}
    physical = {p: limit - h for p, h in house.items()}
    stale = bool(problems)
    import_room: float | None = None
    if settings.max_import_power is not None and not stale:
        import_room = (settings.max_import_power - settings.power_buffer) / voltage - sum(house.values())

    # Battery.
    battery_soc = battery_w = solar_w = None
    if measurement is not None:
        if _fresh(measurement.battery_soc, cutoff, ahead) and measurement.battery_soc is not None:
            battery_soc = measurement.battery_soc.value
        if _fresh(measurement.battery_power, cutoff, ahead) and measurement.battery_power is not None:
            battery_w = measurement.battery_power.value
        if _fresh(measurement.solar_power, cutoff, ahead) and measurement.solar_power is not None:
            solar_w = measurement.solar_power.value
    has_battery = settings.battery is not None or (
        measurement is not None and (measurement.battery_soc is not None or measurement.battery_power is not None)
    )
    bs = settings.battery if settings.battery is not None else DEFAULT_BATTERY
    bw = battery_w or 0.0
    charge_w = max(0.0, -bw)
    battery_first = False
    battery_why = ""
    allowance_w = 0.0
    latched = False
    excess_blocked = ""
    if has_battery:
        if battery_soc is None:
            battery_first, battery_why = True, "the battery's SOC is unknown"
        elif battery_soc < bs.target_soc:
            battery_first = True
            battery_why = f"the battery is at {battery_soc:.0f} %, below its {bs.target_soc:.0f} % target"
        elif battery_soc > bs.target_soc and bs.max_discharge_power is not None:
            allowance_w = max(0.0, bs.max_discharge_power - max(0.0, bw))
            if settings.inverter is not None and solar_w is not None:
                allowance_w = min(allowance_w, max(0.0, settings.inverter.max_power - solar_w - bw))
        if battery_soc is not None:
            latched = battery_soc >= 100.0 or (memory.battery_full_latched and battery_soc >= 100.0 - bs.hysteresis)
        at_max = False
        if bs.max_charge_power is not None and bs.max_charge_power > 0:
            tolerance = max(AT_MAX_TOLERANCE_W, AT_MAX_TOLERANCE_FRACTION * bs.max_charge_power)
            at_max = charge_w >= bs.max_charge_power - tolerance
        if not (latched or at_max):
            excess_blocked = (
                "the battery's SOC is unknown"
                if battery_soc is None
                else f"the battery ({battery_soc:.0f} %) is not full and not charging at its maximum rate"
            )

    battery_note = ""
    if has_battery:
        soc_text = "SOC unknown" if battery_soc is None else f"{battery_soc:.0f} %"
        flow = "" if battery_w is None else f", {'discharging' if bw > 0 else 'charging'} {abs(bw):.0f} W"
        state = "full (latched)" if latched else "below target" if battery_first else "above target"
        battery_note = f"battery {soc_text}{flow}: {state}"
    n = len(phases)
    per_phase_battery = (allowance_w - bw) / (voltage * n)
    raw_surplus = {p: -h + per_phase_battery for p, h in house.items()}
    if stale:
        ema = dict(memory.surplus_ema)
        surplus = 0.0
    else:
        t = settings.timers
        ema = smooth_surplus(raw_surplus, memory.surplus_ema, t.surplus_smoothing, t.surplus_dead_band)
        surplus = max(0.0, sum(ema.values()))
    excess = 0.0
    if not stale and not excess_blocked:
        export_w = -sum(house.values()) * voltage
        excess_w = export_w - max(0.0, bw) - settings.excess_export_threshold
        if latched:
            excess_w += charge_w
        excess = max(0.0, excess_w / voltage)
    return Pools(
        phases=phases,
        house=house,
        known=frozenset(grid),
        stale=stale,
        stale_why="; ".join(problems),
        physical=physical,
        import_room=import_room,
        surplus=surplus,
        excess=excess,
        has_battery=has_battery,
        battery_first=battery_first,
        battery_why=battery_why,
        excess_blocked=excess_blocked,
        latched=latched,
        surplus_ema=ema,
        battery_note=battery_note,
        grid_for_minimums=settings.allow_grid_charging,
    )


def clamp(value: float) -> float:
    """A figure held to the contract's amps range."""
    return -1000.0 if value < -1000.0 else 1000.0 if value > 1000.0 else value


def report(pools: Pools) -> dict[str, dict[Phase, float]]:
    """The pools as the allocation reports them: per phase (the power pools split evenly over the phases)."""
    n = len(pools.phases)
    out: dict[str, dict[Phase, float]] = {"physical": {p: clamp(v) for p, v in pools.physical.items()}}
    out["surplus"] = dict.fromkeys(pools.phases, clamp(pools.surplus / n))
    out["excess"] = dict.fromkeys(pools.phases, clamp(pools.excess / n))
    return out
