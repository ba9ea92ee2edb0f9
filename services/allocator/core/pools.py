"""House load, data freshness and the three pools (physical, solar surplus, truly excess).

All figures are amps. Per-phase figures are per site phase; the solar pools are *power* pools netted over the
phases (a meter nets export on one phase against import on another), held as "leg-amps": a load drawing
``I`` A on ``k`` legs takes ``k * I`` from them, so a 1-phase load is budgeted on its one phase only.

Sign conventions: grid current import positive, battery power discharge positive. With ``draw`` what the loads'
claims count on the phases they use now (:mod:`.follow`: fresh states only, at most what each load may be
drawing), ``house = grid - draw`` per phase, plus what faulted or unavailable loads may draw on their own
beyond their draw (their ``fallback_current``); ``-house`` summed over the phases
(times the voltage) is what the site would export if the loads drew nothing. That figure still contains
the battery, which :mod:`.battery` accounts for:

* surplus = export + what the battery adds: above its target band what it charges and what it may still
  discharge, below it minus what it discharges (Solar Only waits then anyway);
* excess  = export - what the battery discharges - the export threshold, only when the battery cannot take
  more (full, charging at its maximum, saturated). A site without a battery: export - threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.models.allocation import SiteMemory
from shared.models.base import Phase
from shared.models.measurement import Reading, SiteMeasurement
from shared.models.settings import SiteSettings

from .battery import BatteryState, battery_state
from .follow import fallback_reserve
from .stability import smooth_surplus
from .views import LoadView


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
    #: Battery latches for the next decision (see :mod:`.battery`).
    above_target: bool = False
    saturated_charge: float | None = None


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

    # Battery (see :mod:`.battery`).
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
    n = len(phases)
    export_w = -sum(house.values()) * voltage
    threshold_w = settings.excess_export_threshold
    if has_battery:
        measured_export_w = None if stale else -sum(grid.values()) * voltage
        battery = battery_state(
            settings.battery, settings.inverter, n, battery_soc, battery_w, solar_w, export_w,
            measured_export_w, threshold_w, memory,
        )
    else:
        battery = BatteryState(0.0, max(0.0, export_w - threshold_w), False, "", "", False, False, None, "")
    raw_surplus = {p: -h + battery.surplus_w / (voltage * n) for p, h in house.items()}
    if stale:
        ema = dict(memory.surplus_ema)
        surplus = 0.0
        excess = 0.0
    else:
        t = settings.timers
        ema = smooth_surplus(raw_surplus, memory.surplus_ema, t.surplus_smoothing, t.surplus_dead_band)
        if settings.surplus_per_phase and n > 1:
            surplus = per_phase_surplus(ema, battery.surplus_w / voltage, settings)
        else:
            surplus = max(0.0, sum(ema.values()))
        excess = battery.excess_w / voltage
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
        battery_first=battery.first,
        battery_why=battery.first_why,
        excess_blocked=battery.excess_blocked,
        latched=battery.full_latched,
        surplus_ema=ema,
        battery_note=battery.note,
        above_target=battery.above_target,
        saturated_charge=battery.saturated_charge,
        grid_for_minimums=settings.allow_grid_charging,
    )


def per_phase_surplus(smoothed: dict[Phase, float], battery_legs: float, settings: SiteSettings) -> float:
    """The surplus pool (leg-amps) where export is not netted over the phases: the level every phase can
    give, times the phases — a load never makes a phase import for another phase's export.

    ``smoothed`` holds each phase's surplus with the battery's help spread evenly (a symmetric inverter). An
    asymmetric inverter (``inverter.symmetric`` false) puts that help where it is short instead, at most
    ``max_power_per_phase`` on a phase: the help is poured onto the lowest phases first."""
    n = len(smoothed)
    inverter = settings.inverter
    if inverter is None or inverter.symmetric or battery_legs <= 0.0:
        return max(0.0, n * min(smoothed.values()))
    share = battery_legs / n
    solar = [v - share for v in smoothed.values()]
    voltage = settings.voltage if settings.voltage > 0 else 230.0
    cap = inverter.max_power_per_phase / voltage if inverter.max_power_per_phase is not None else float("inf")
    lo, hi = min(solar), max(solar) + battery_legs
    for _ in range(40):
        level = (lo + hi) / 2.0
        if sum(min(cap, max(0.0, level - v)) for v in solar) > battery_legs:
            hi = level
        else:
            lo = level
    level = min(lo, min(v + cap for v in solar))
    return max(0.0, n * level)


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
