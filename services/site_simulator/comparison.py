"""The same simulated day under ampmq's core and under evcc's default timers: starts per load and
self-consumption, side by side (issue 14's "start/stop quality as a number").

A scenario is played as a closed loop (:mod:`.closed_loop`): its house (appliances and base load, from the
simulator's seeded profiles), its sun with clouds, its battery doing self-consumption, its cars (arriving,
leaving, full after the energy they want) and its boiler (an on/off load until its tank is hot), one decision
every 10 s. The same day runs twice: with the allocator core, and with the comparison policy
:mod:`services.allocator.evcc_policy` (evcc's PV-mode enable delay 1 min, disable delay 3 min, thresholds
0 W), everything else equal. ``make demo`` puts the table in its report; ``python -m bench quality`` runs every
scenario.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.models import BatterySettings, Circuit, LoadKind, Phase, SiteSettings

from .closed_loop import CorePolicy, Day, EvccPolicy, HomeBattery, Load, Policy, Record
from .closed_loop import run as play
from .household import Household
from .scenario import Scenario
from .solar import Solar

STEP = 10.0
#: Wh per litre and kelvin (water).
WATER_WH = 1.163


def _seconds(start: datetime, at: Any) -> float:
    local = datetime.combine(start.date(), at, tzinfo=start.tzinfo)
    return max(0.0, (local - start).total_seconds())


def site_settings(scenario: Scenario) -> SiteSettings:
    """The allocator settings the simulator's wiring gives this scenario (battery, circuits, overrides)."""
    battery = None
    if scenario.battery is not None:
        b = scenario.battery
        battery = BatterySettings(min_soc=b.reserve_soc, target_soc=b.target_soc, max_charge_power=b.max_charge_power,
                                  max_discharge_power=b.max_discharge_power)
    base = SiteSettings(
        site=scenario.site, phases=[Phase(p) for p in scenario.grid.phases], fuse_limit=scenario.grid.fuse,
        margin=scenario.grid.margin, voltage=scenario.grid.voltage, battery=battery,
        circuits=[Circuit(id=c.id, limit=c.limit) for c in scenario.circuits],
    )
    if scenario.allocator:
        return SiteSettings.model_validate(base.model_dump() | dict(scenario.allocator))
    return base


def day_of(scenario: Scenario) -> Day:
    """A fresh closed-loop day for the scenario (its random draws from the scenario's seed)."""
    start = scenario.start
    phases = [str(p) for p in scenario.grid.phases]
    household = Household(scenario.household, phases, start, scenario.seed)
    solar = Solar(scenario.solar, start, scenario.duration, scenario.seed)

    def house(t: float) -> dict[Phase, float]:
        return {Phase(p): w for p, w in household.power(start + timedelta(seconds=t)).items()}

    def sun(t: float) -> float:
        return solar.power(start + timedelta(seconds=t))

    loads: list[Load] = []
    for c in scenario.chargers:
        if c.ev is None:
            continue
        ev = c.ev  # the first session (the demo scenarios have one per charger)
        legs = min(c.phases, ev.phases)
        on = "".join(str(c.legs[leg]) for leg in sorted(c.legs)[:legs])
        loads.append(Load(
            c.id, c.mode, on=on, hi=min(c.max_current, ev.max_current), priority=c.priority, lag=4.0,
            arrives=_seconds(start, ev.arrives),
            leaves=_seconds(start, ev.leaves) if ev.leaves is not None else float("inf"),
            wanted_wh=ev.capacity * max(0.0, ev.target_soc - ev.soc) / 100.0,
        ))
    if scenario.boiler is not None:
        b = scenario.boiler
        loads.append(Load(
            b.id, b.mode, on=str(b.phase), kind=LoadKind.ONOFF, rated=b.power, priority=b.priority, lag=1.0,
            wanted_wh=max(0.0, b.max_temperature - b.temperature) * b.volume * WATER_WH,
        ))
    battery = None
    if scenario.battery is not None:
        s = scenario.battery
        battery = HomeBattery(capacity_wh=s.capacity, soc=s.soc, max_charge_w=s.max_charge_power,
                              max_discharge_w=s.max_discharge_power, reserve_soc=s.min_soc, ceiling_soc=s.max_soc)
    return Day(site_settings(scenario), house, sun, loads, battery, start=start, step=STEP)


def figures(record: Record, day: Day) -> dict[str, Any]:
    modes = {x.id: x.mode.value for x in day.loads}
    return {
        "starts": dict(record.starts),
        "kwh": {k: round(v / 1000.0, 1) for k, v in record.energy_wh.items()},
        "modes": modes,
        "self_consumption_pct": round(100.0 * record.self_consumption, 1),
        "import_kwh": round(record.import_wh / 1000.0, 1),
        "export_kwh": round(record.export_wh / 1000.0, 1),
        "solar_kwh": round(record.solar_wh / 1000.0, 1),
    }


def compare(scenario: Scenario) -> dict[str, Any]:
    """The scenario's day under each policy: starts, energies and self-consumption."""
    out: dict[str, Any] = {"name": scenario.name}
    policies: dict[str, Policy] = {"ampmq": CorePolicy(), "evcc_defaults": EvccPolicy()}
    for name, policy in policies.items():
        day = day_of(scenario)
        out[name] = figures(play(day, scenario.duration, policy), day)
    return out


def without_phase_switching(scenario: Scenario) -> Scenario | None:
    """The same scenario with every charger's 1p/3p switching off, to measure what switching gains; None when
    no charger switches."""
    if not any(c.phase_switching for c in scenario.chargers):
        return None
    chargers = [c.model_copy(update={"phase_switching": False}) for c in scenario.chargers]
    return scenario.model_copy(update={"chargers": chargers})


def phase_switching_gain(scenario: Scenario, with_switching: dict[str, Any],
                         without: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per switching charger: the energy (kWh) it charged in the run with switching and in the same day's run
    without it (both runs' KPIs), and the difference."""
    gain: dict[str, dict[str, float]] = {}
    for charger in scenario.chargers:
        if not charger.phase_switching:
            continue
        got = float(with_switching["loads"].get(charger.id, {}).get("energy_kwh", 0.0))
        base = float(without["loads"].get(charger.id, {}).get("energy_kwh", 0.0))
        gain[charger.id] = {"with_kwh": round(got, 2), "without_kwh": round(base, 2),
                            "gained_kwh": round(got - base, 2)}
    return gain

