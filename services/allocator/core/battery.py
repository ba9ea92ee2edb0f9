"""The home battery as a solar household means it: what it adds to the solar surplus, and when its power is excess.

Sign conventions: battery power discharge positive (W). ``export_w`` is what the site would export if the
loads that get a setpoint drew nothing (``-sum(house) * voltage``); it still contains whatever the battery does
now, so a discharge is already in it and a charge is already taken out of it.

* **Target band.** The battery is *above target* from the moment its SOC reaches ``target_soc`` until it
  falls below ``target_soc - hysteresis``: latched in :attr:`SiteMemory.battery_above_target`. The band
  keeps off ``min_soc``, the inverter's reserve: it is never released below ``min_soc``, and never reached
  below ``min_soc + hysteresis`` (a target at the minimum: the battery may be used down to its reserve,
  and again from 3 % above it). Below the band it charges first: Solar Only waits, Solar Priority
  gets its minimum, and no excess is counted.
* **Surplus above target** = export + what the battery charges (it may charge less) + what it may still
  discharge (``max_discharge_power`` less what it discharges now; without ``max_discharge_power`` nothing).
  The discharge in ``export_w`` is never taken out again, so the figure does not depend on what the loads
  happen to draw. The increase is capped by the inverter: ``max_power`` (and ``max_power_per_phase`` times
  the phases) less its present output, solar + battery.
* **Excess** = export - discharge - ``excess_export_threshold``, counted only when the battery cannot take
  more: *full* (SOC from ``full_soc`` — or the target, if higher — latched until ``full_soc - hysteresis``;
  what it still absorbs is excess too) or *saturated*: charging at its maximum rate, or, above target,
  charging below it while the site exports (a BMS ceiling, a constant-voltage taper). A saturated battery is
  remembered with the charge it had (:attr:`SiteMemory.battery_saturated_charge`, until it discharges):
  should it charge less now — an Excess load took more than the overflow, a cloud passed — the difference
  is taken off the excess, so an Excess load never eats into what the battery was taking, and a battery
  that the load has pulled off its maximum does not block the excess the next moment.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.models.allocation import SiteMemory
from shared.models.settings import BatterySettings, InverterLimits

#: A battery charging within this much of its maximum rate counts as charging at its maximum (W, fraction).
AT_MAX_TOLERANCE_W = 50.0
AT_MAX_TOLERANCE_FRACTION = 0.02
#: Measured export (W) above which a battery that charges below its maximum counts as saturated, and a
#: discharge (W) below which the battery counts as not discharging (meter noise, inverter self-use).
SATURATION_EXPORT_W = 100.0
DISCHARGE_TOLERANCE_W = 50.0

#: The battery settings of a site that reports a battery but has none configured (an immutable constant).
DEFAULT_BATTERY = BatterySettings()


@dataclass(slots=True)
class BatteryState:
    #: W the battery adds to the solar surplus (negative: it takes from it).
    surplus_w: float
    #: W of excess (before the loads), 0 when ``excess_blocked``.
    excess_w: float
    #: Below its target band (or SOC unknown): battery first.
    first: bool
    first_why: str
    excess_blocked: str
    full_latched: bool
    above_target: bool
    saturated_charge: float | None
    note: str


def _soc_text(soc: float) -> str:
    """An SOC as people read it: one decimal, so 79.9 % never reads as 80 %."""
    return f"{soc:.1f} %".replace(".0 %", " %")


def _inverter_room(inverter: InverterLimits | None, phases: int, solar_w: float | None, battery_w: float) -> float:
    """How much more the inverter can put out (W); unbounded without limits or a solar reading."""
    if inverter is None or solar_w is None:
        return float("inf")
    limit = inverter.max_power
    if inverter.max_power_per_phase is not None:
        limit = min(limit, inverter.max_power_per_phase * phases)
    return max(0.0, limit - solar_w - battery_w)


def battery_state(
    settings: BatterySettings | None,
    inverter: InverterLimits | None,
    phases: int,
    soc: float | None,
    battery_w: float | None,
    solar_w: float | None,
    export_w: float,
    measured_export_w: float | None,
    threshold_w: float,
    memory: SiteMemory,
) -> BatteryState:
    """The battery's part of the pools for one decision (``measured_export_w``: what the grid meter shows
    leaving the site now, None when unknown)."""
    bs = settings if settings is not None else DEFAULT_BATTERY
    bw = battery_w or 0.0
    charge_w = max(0.0, -bw)
    discharge_w = max(0.0, bw)
    if soc is None:
        why = "the battery's SOC is unknown"
        return BatteryState(-bw, 0.0, True, why, why, False, False, None, _note(None, battery_w, "below target"))

    # The band at the target, kept off the inverter's reserve: never released below min_soc, and a target
    # within the band of min_soc is only reached at min_soc + hysteresis (the band at the minimum).
    release = max(bs.min_soc, bs.target_soc - bs.hysteresis)
    reach = max(bs.target_soc, min(100.0, bs.min_soc + bs.hysteresis))
    above_target = soc >= reach or (memory.battery_above_target and soc >= release)
    full_soc = max(bs.full_soc, bs.target_soc)
    full = soc >= full_soc or (memory.battery_full_latched and soc >= full_soc - bs.hysteresis)
    at_max = False
    if bs.max_charge_power is not None and bs.max_charge_power > 0:
        tolerance = max(AT_MAX_TOLERANCE_W, AT_MAX_TOLERANCE_FRACTION * bs.max_charge_power)
        at_max = charge_w >= bs.max_charge_power - tolerance

    # Saturated: at its maximum rate, or above target charging below it while the site exports. Remembered
    # with the charge it had, until the battery discharges.
    saturated: float | None = None
    if discharge_w <= DISCHARGE_TOLERANCE_W:
        exporting = measured_export_w is not None and measured_export_w > SATURATION_EXPORT_W
        if at_max or (above_target and exporting):
            saturated = charge_w
        elif memory.battery_saturated_charge is not None:
            saturated = memory.battery_saturated_charge

    first_why = ""
    surplus_w = -bw
    if not above_target and soc >= bs.target_soc:
        first_why = (
            f"the battery is at {_soc_text(soc)}, not yet {_soc_text(reach)}"
            f" ({_soc_text(bs.hysteresis)} above its {_soc_text(bs.min_soc)} reserve)"
        )
    elif not above_target:
        first_why = f"the battery is at {_soc_text(soc)}, below its {_soc_text(bs.target_soc)} target"
        if memory.battery_above_target:
            first_why += f" band ({_soc_text(release)})"
    elif bs.max_discharge_power is not None:
        headroom_w = max(0.0, bs.max_discharge_power - discharge_w)
        surplus_w = min(charge_w + headroom_w, _inverter_room(inverter, phases, solar_w, bw))

    excess_blocked = ""
    excess_w = 0.0
    if full or saturated is not None:
        excess_w = export_w - discharge_w - threshold_w
        if full:
            excess_w += charge_w
        elif saturated is not None:
            excess_w -= max(0.0, saturated - charge_w)
    else:
        excess_blocked = f"the battery ({_soc_text(soc)}) is not full and can still take the solar power"
    state = (
        "full (latched)" if full
        else "below target" if not above_target
        else "saturated" if saturated is not None
        else "above target"
    )
    return BatteryState(
        surplus_w,
        max(0.0, excess_w),
        not above_target,
        first_why,
        excess_blocked,
        full,
        above_target,
        saturated,
        _note(soc, battery_w, state),
    )


def _note(soc: float | None, battery_w: float | None, state: str) -> str:
    soc_text = "SOC unknown" if soc is None else _soc_text(soc)
    bw = battery_w or 0.0
    flow = "" if battery_w is None else f", {'discharging' if bw > 0 else 'charging'} {abs(bw):.0f} W"
    return f"battery {soc_text}{flow}: {state}"
