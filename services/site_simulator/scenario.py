"""A scenario: the site, its devices and the simulated day, loaded from a YAML file in ``scenarios/``.

.. code-block:: yaml

    name: Sunny day
    site: home
    seed: 7
    start: "2026-06-21T05:00:00+02:00"   # the simulated day starts here
    duration: 57600                     # simulated seconds (16 h)
    speed: 600                          # default speed of ``ampmq demo`` for this scenario
    grid: {phases: [A, B, C], fuse: 25, curve: B, margin: 1}
    household: {base_power: [180, 140, 160], appliances: [{name: kettle, phase: A, power: 2000, ...}]}
    solar: {peak_power: 9000, clouds: 0.1}
    battery: {capacity: 10000, max_charge_power: 5000, max_discharge_power: 5000, soc: 30}
    chargers:
      - {id: carport, ocpp: "1.6", max_current: 16, mode: standard, ev: {...}}
    boiler: {power: 2000, mode: excess, volume: 200}

Every field has a plain default so a scenario names only what makes it different.
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.models import Leg, Mode, Phase

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Watts = Annotated[float, Field(ge=0.0, le=1_000_000.0)]
Seconds = Annotated[float, Field(ge=0.0, le=7 * 86_400.0)]


class ScenarioError(ValueError):
    """The scenario file cannot be used; the message names the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class GridSpec(Strict):
    phases: list[Phase] = Field(default_factory=lambda: [Phase.A, Phase.B, Phase.C], min_length=1, max_length=3)
    #: Rated current of the main fuse or breaker per phase (A).
    fuse: float = Field(default=25.0, gt=0, le=400)
    #: Trip curve: an IEC 60898 breaker (B, C) or a gG fuse (IEC 60269).
    curve: Literal["B", "C", "gG"] = "B"
    #: Kept free below the fuse by the allocator (A).
    margin: float = Field(default=1.0, ge=0, le=50)
    voltage: float = Field(default=230.0, gt=100, le=260)


class Appliance(Strict):
    """A household appliance that runs at fixed times of the day (each start jittered by the seed)."""

    name: str
    phase: Phase = Phase.A
    #: Heating power, then ``tail_power`` for ``tail`` seconds (a washing machine's wash after heating).
    power: Watts
    duration: Seconds = 180.0
    tail_power: Watts = 0.0
    tail: Seconds = 0.0
    #: Local times of the day (HH:MM) it starts.
    starts: list[time] = Field(default_factory=list)
    #: Random shift of each start, up to this many seconds either way.
    jitter: Seconds = 600.0
    #: Extra starts at random times between 06:00 and 23:00 (seeded).
    random_starts: int = Field(default=0, ge=0, le=50)


class HouseholdSpec(Strict):
    #: Always-on base load per site phase (W), shaped by a daily profile (night low, evening high).
    base_power: list[Watts] = Field(default_factory=lambda: [180.0, 140.0, 160.0], min_length=1, max_length=3)
    #: Random fluctuation of the base load (fraction).
    noise: float = Field(default=0.15, ge=0, le=1)
    appliances: list[Appliance] = Field(default_factory=list)


class SolarSpec(Strict):
    #: DC peak power at clear sky noon (W); 0: no solar.
    peak_power: Watts = 0.0
    #: Local solar noon and day length (hours).
    noon: time = time(13, 30)
    day_length: float = Field(default=15.5, gt=0, le=24)
    #: Fraction of the day under cloud (0 clear .. 1 overcast) and how much a cloud lets through.
    clouds: float = Field(default=0.0, ge=0, le=1)
    cloud_transmission: float = Field(default=0.3, ge=0, le=1)
    #: Mean length of one cloud passage (s).
    cloud_length: Seconds = 240.0
    #: The inverter's AC limit (W); None: no clipping.
    inverter_power: Watts | None = None


class BatterySpec(Strict):
    capacity: Watts = Field(description="usable capacity in Wh", gt=0)
    soc: float = Field(default=50.0, ge=0, le=100)
    max_charge_power: Watts = 5000.0
    max_discharge_power: Watts = 5000.0
    efficiency: float = Field(default=0.95, gt=0, le=1)
    #: Self-consumption keeps the battery between these (%).
    min_soc: float = Field(default=5.0, ge=0, le=100)
    max_soc: float = Field(default=100.0, ge=0, le=100)
    #: What the allocator is told (BatterySettings): its own reserve and the SOC it fills first.
    reserve_soc: float = Field(default=10.0, ge=0, le=100)
    target_soc: float = Field(default=80.0, ge=0, le=100)


class EvSpec(Strict):
    """The car that plugs into a charger."""

    name: str = "EV"
    capacity: Watts = Field(default=60_000.0, gt=0, description="battery Wh")
    soc: float = Field(default=30.0, ge=0, le=100)
    target_soc: float = Field(default=100.0, ge=0, le=100)
    #: On-board charger phases and its largest current per phase.
    phases: Literal[1, 3] = 3
    max_current: float = Field(default=16.0, ge=6, le=80)
    #: Above this SOC the car takes less and less (constant-voltage phase).
    taper_from: float = Field(default=85.0, ge=0, le=100)
    #: Local times (HH:MM) it arrives and leaves; leaves=None: stays to the end.
    arrives: time = time(8, 0)
    leaves: time | None = None
    #: The car follows a new pilot limit after a delay drawn from this range (s).
    lag: tuple[float, float] = (2.0, 5.0)
    #: When its charger switches between 1 and 3 phases the car stops and resumes on the new count this long
    #: after (s); a car that refuses one phase draws nothing on a 1-phase supply.
    phase_change_pause: float = Field(default=10.0, ge=0, le=600)
    refuses_one_phase: bool = False


class ChargerSpec(Strict):
    id: Id
    ocpp: Literal["1.6", "2.0.1"] = "1.6"
    #: The charger's rating per phase (A) and its phases.
    max_current: float = Field(default=16.0, ge=6, le=80)
    phases: Literal[1, 3] = 3
    #: How its L1/L2/L3 are wired to the site's phases.
    legs: dict[Leg, Phase] = Field(default_factory=lambda: {Leg.L1: Phase.A, Leg.L2: Phase.B, Leg.L3: Phase.C})
    mode: Mode = Mode.STANDARD
    priority: int = Field(default=5, ge=1, le=99)
    circuit: Id | None = None
    ev: EvSpec | None = None
    #: More cars over the day (each with its own times).
    more_evs: list[EvSpec] = Field(default_factory=list)
    #: Quirks of real chargers. Where it counts a Relative schedule from: ``transaction`` (its start, as
    #: the standard's example and the common stacks have it) or ``receipt`` (when it took the profile).
    relative_from: Literal["transaction", "receipt"] = "transaction"
    #: How far its clock is off (s). It keeps that clock (does not take the central system's time) and uses
    #: it for Absolute schedules, validFrom/validTo and its messages' timestamps.
    clock_skew: float = Field(default=0.0, ge=-86400.0, le=86400.0)
    #: Takes profiles on stack level 0 only / with limits in W only / of kind Relative only.
    stack_level_zero_only: bool = False
    watts_only: bool = False
    relative_only: bool = False
    #: A 1p/3p charger: it supplies the ``numberPhases`` of the profile in force (1: its L1 only). Its load is
    #: configured ``phase_switching: ocpp`` and ``switch_phases`` becomes the load's ``phases`` setting.
    phase_switching: bool = False
    switch_phases: Literal["auto", "1", "3"] = "auto"

    def sessions(self) -> list[EvSpec]:
        return ([self.ev] if self.ev else []) + list(self.more_evs)


class BoilerSpec(Strict):
    id: Id = "boiler"
    phase: Phase = Phase.B
    power: Watts = 2000.0
    mode: Mode = Mode.EXCESS
    priority: int = Field(default=8, ge=1, le=99)
    volume: float = Field(default=200.0, gt=0, description="litres")
    temperature: float = Field(default=45.0, ge=0, le=100)
    min_temperature: float = Field(default=40.0, ge=0, le=100)
    max_temperature: float = Field(default=65.0, ge=0, le=100)
    #: Heat lost to the room (W per K above 20 °C) and hot water drawn (local times, litres each).
    loss: float = Field(default=2.0, ge=0)
    draws: list[tuple[time, float]] = Field(default_factory=lambda: [(time(7, 0), 40.0), (time(21, 0), 60.0)])


class CircuitSpec(Strict):
    id: Id
    limit: float = Field(gt=0, le=400)
    curve: Literal["B", "C", "gG"] = "B"


class PricesSpec(Strict):
    """A price curve published retained on ``<site>/prices`` at the start, as a tariff bridge would: one price
    per ``slot`` seconds from ``start`` (local time on the scenario's first day, or the next day when it is
    before the scenario's start)."""

    start: time
    slot: Seconds = Field(default=3600.0, gt=0)
    currency: str = Field(default="EUR", min_length=1, max_length=8)
    values: list[float] = Field(min_length=1, max_length=500)


class PlanSpec(Strict):
    """A departure plan set on a charger's load at the start (``plan/set``): a target SOC (of the charger's
    car; its capacity is the car's) or energy, by the next ``deadline`` (local time) after the start."""

    load: Id
    target_soc: float | None = Field(default=None, ge=0, le=100)
    target_energy_wh: Watts | None = None
    deadline: time

    @model_validator(mode="after")
    def _one_target(self) -> PlanSpec:
        if (self.target_soc is None) == (self.target_energy_wh is None):
            raise ValueError("a plan needs exactly one of target_soc and target_energy_wh")
        return self


class DimmingWindow(Strict):
    """Local times (HH:MM) the grid operator limits the site, and what it limits."""

    start: time
    end: time
    controllable_cap_w: Watts | None = 4200.0
    import_limit_w: Watts | None = None


class GridOperatorSpec(Strict):
    """The grid operator's control box (see ``grid_operator.py``)."""

    #: Simulated seconds between two signals (each is also the box's heartbeat).
    heartbeat: Seconds = Field(default=60.0, gt=0)
    required: bool = True
    #: The allocator falls back after this much silence (s).
    signal_timeout: Seconds = Field(default=300.0, gt=0)
    #: What the allocator applies while the box is silent (W per controllable load).
    fallback_cap_w: Watts = 4200.0
    windows: list[DimmingWindow] = Field(default_factory=list)
    #: Local (start, end) spans in which the box sends nothing.
    silent: list[tuple[time, time]] = Field(default_factory=list)


class TimingSpec(Strict):
    """How often the simulated devices report (simulated seconds)."""

    step: Seconds = 2.0
    meter_interval: Seconds = 10.0
    charger_meter_interval: Seconds = 15.0
    sample_interval: Seconds = 30.0


class Scenario(Strict):
    name: str
    description: str = ""
    site: Id = "home"
    seed: int = 1
    start: AwareDatetime
    duration: Seconds = 86_400.0
    speed: float = Field(default=600.0, gt=0, le=100_000)
    grid: GridSpec = Field(default_factory=GridSpec)
    household: HouseholdSpec = Field(default_factory=HouseholdSpec)
    solar: SolarSpec = Field(default_factory=SolarSpec)
    battery: BatterySpec | None = None
    chargers: list[ChargerSpec] = Field(default_factory=list)
    boiler: BoilerSpec | None = None
    circuits: list[CircuitSpec] = Field(default_factory=list)
    timing: TimingSpec = Field(default_factory=TimingSpec)
    #: Allocator settings (a SiteSettingsSet) on top of what the scenario implies.
    allocator: dict[str, object] = Field(default_factory=dict)
    #: A price forecast and departure plans published at the start (docs/plans.md).
    prices: PricesSpec | None = None
    plans: list[PlanSpec] = Field(default_factory=list)
    #: The grid operator's control box and its dimming windows (see ``grid_operator.py``).
    grid_operator: GridOperatorSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        ids = [c.id for c in self.chargers] + ([self.boiler.id] if self.boiler else [])
        if len(set(ids)) != len(ids):
            raise ValueError(f"load ids repeat: {ids}")
        if len(self.household.base_power) != len(self.grid.phases):
            raise ValueError("household.base_power needs one value per grid phase")
        circuits = {c.id for c in self.circuits}
        for c in self.chargers:
            if c.circuit is not None and c.circuit not in circuits:
                raise ValueError(f"charger {c.id} names unknown circuit {c.circuit}")
            for leg, phase in c.legs.items():
                if phase not in self.grid.phases and int(leg[1]) <= c.phases:
                    raise ValueError(f"charger {c.id}: {leg} wired to {phase}, which the site does not have")
        if self.boiler and self.boiler.phase not in self.grid.phases:
            raise ValueError(f"boiler on phase {self.boiler.phase}, which the site does not have")
        for a in self.household.appliances:
            if a.phase not in self.grid.phases:
                raise ValueError(f"appliance {a.name} on phase {a.phase}, which the site does not have")
        chargers = {c.id: c for c in self.chargers}
        for plan in self.plans:
            charger = chargers.get(plan.load)
            if charger is None:
                raise ValueError(f"plan for {plan.load}, which is not a charger of the scenario")
            if plan.target_soc is not None and charger.ev is None:
                raise ValueError(f"plan for {plan.load} sets target_soc but the charger has no ev (its capacity)")
        return self

    @property
    def end(self) -> datetime:
        from datetime import timedelta

        return self.start + timedelta(seconds=self.duration)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; :class:`ScenarioError` names what is wrong."""
    file = Path(path)
    if not file.is_file():
        raise ScenarioError(f"scenario {file} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {file} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {file} must hold a mapping")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or 'scenario'}: {e['msg']}" for e in exc.errors()]
        raise ScenarioError(f"scenario {file}:\n  " + "\n  ".join(lines)) from exc
