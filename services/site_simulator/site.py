"""The whole site's physics, stepped in simulated time: house, solar, battery, cars on chargers, the
boiler, and the fuses of the main connection and of each circuit.

The protocol side (OCPP clients, the Shelly meter, the SunSpec server) reads :class:`SiteState` and
writes only what a device's controls can change: a charger's offered current, a relay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.models import Leg

from .battery import Battery
from .boiler import Boiler
from .ev import Ev
from .fuse import FuseModel
from .household import Household
from .scenario import ChargerSpec, EvSpec, Scenario
from .solar import Solar

LEGS = (Leg.L1, Leg.L2, Leg.L3)


@dataclass(slots=True)
class Session:
    arrives: datetime
    leaves: datetime | None
    spec: EvSpec


class ChargerPlug:
    """A charger's power side: which car is plugged in, what the charger offers, what flows per leg."""

    def __init__(self, spec: ChargerSpec, day_start: datetime, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        midnight = day_start.replace(hour=0, minute=0, second=0, microsecond=0)
        self.sessions = []
        for ev in spec.sessions():
            arrives = midnight + timedelta(hours=ev.arrives.hour, minutes=ev.arrives.minute)
            leaves = None if ev.leaves is None else midnight + timedelta(hours=ev.leaves.hour, minutes=ev.leaves.minute)
            if leaves is not None and leaves <= arrives:
                leaves += timedelta(days=1)
            self.sessions.append(Session(arrives, leaves, ev))
        self.ev: Ev | None = None
        self.session: Session | None = None
        #: What the charger offers the car (A per phase): set by its controller (the OCPP client).
        self.offered = spec.max_current
        self.legs: dict[Leg, float] = dict.fromkeys(LEGS, 0.0)
        self.energy_wh = 0.0
        self.sessions_done = 0
        #: A 1p/3p charger: the phases it supplies now (set by its controller from the profile in force).
        self.supplied = spec.phases
        #: The phase count the car last charged on, and until when it pauses after a change (simulated s).
        self.last_phases = 0
        self.resume_at = -1e18

    @property
    def plugged(self) -> bool:
        return self.ev is not None

    @property
    def phases_used(self) -> int:
        return 0 if self.ev is None else min(self.ev.spec.phases, self.spec.phases, self.supplied)

    @property
    def current(self) -> float:
        return max(self.legs.values())

    @property
    def power(self) -> float:
        return sum(self.legs.values()) * 230.0

    def step(self, now: datetime, t: float, dt: float, voltage: float) -> None:
        if self.session is not None and self.session.leaves is not None and now >= self.session.leaves:
            self.ev, self.session = None, None
            self.sessions_done += 1
        if self.ev is None:
            for session in self.sessions:
                if session.arrives <= now and (session.leaves is None or now < session.leaves) and \
                        self.sessions.index(session) >= self.sessions_done:
                    self.session = session
                    self.ev = Ev(session.spec, self.seed + self.sessions.index(session))
                    break
        self.legs = dict.fromkeys(LEGS, 0.0)
        if self.ev is None:
            return
        used = self.phases_used
        if self.last_phases and used != self.last_phases:  # the charger switched: the car stops, then resumes
            self.resume_at = t + self.ev.spec.phase_change_pause
        self.last_phases = used
        offered = min(self.offered, self.spec.max_current)
        if t < self.resume_at or (used == 1 and self.ev.spec.phases > 1 and self.ev.spec.refuses_one_phase):
            offered = 0.0
        amps = self.ev.step(t, dt, offered, voltage, used)
        for leg in LEGS[: self.phases_used]:
            self.legs[leg] = amps
        self.energy_wh += amps * voltage * self.phases_used * dt / 3600.0


@dataclass(slots=True)
class SiteState:
    """One moment of the site, as the meters see it (currents signed, import positive)."""

    at: datetime
    t: float
    grid_current: dict[str, float] = field(default_factory=dict)
    grid_power: dict[str, float] = field(default_factory=dict)
    voltage: dict[str, float] = field(default_factory=dict)
    house: dict[str, float] = field(default_factory=dict)
    solar: float = 0.0
    battery_power: float = 0.0
    battery_soc: float | None = None
    loads: dict[str, float] = field(default_factory=dict)  # load id -> W
    load_current: dict[str, float] = field(default_factory=dict)  # load id -> A per phase
    boiler_temperature: float | None = None
    appliances: list[str] = field(default_factory=list)
    tripped: list[str] = field(default_factory=list)


class Site:
    """Steps the physics; ``state`` is the latest moment."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.phases = [str(p) for p in scenario.grid.phases]
        start, seed = scenario.start, scenario.seed
        self.household = Household(scenario.household, self.phases, start, seed)
        self.solar = Solar(scenario.solar, start, scenario.duration, seed)
        self.battery = Battery(scenario.battery) if scenario.battery else None
        self.chargers = {c.id: ChargerPlug(c, start, seed * 31 + i) for i, c in enumerate(scenario.chargers)}
        self.boiler = Boiler(scenario.boiler, start) if scenario.boiler else None
        self.fuse = FuseModel("main", self.phases, scenario.grid.fuse, scenario.grid.curve)
        self.circuits = {c.id: FuseModel(c.id, self.phases, c.limit, c.curve) for c in scenario.circuits}
        self.t = 0.0
        self.state = SiteState(at=start, t=0.0, voltage=dict.fromkeys(self.phases, scenario.grid.voltage),
                               grid_current=dict.fromkeys(self.phases, 0.0), grid_power=dict.fromkeys(self.phases, 0.0))

    @property
    def now(self) -> datetime:
        return self.scenario.start + timedelta(seconds=self.t)

    def step(self, dt: float) -> SiteState:
        """Advance the site by ``dt`` simulated seconds."""
        self.t += dt
        now, t = self.now, self.t
        nominal = self.scenario.grid.voltage
        voltage = self.state.voltage
        n = len(self.phases)
        power = dict(self.household.power(now))
        house = dict(power)
        loads: dict[str, float] = {}
        load_current: dict[str, float] = {}
        circuit_current: dict[str, dict[str, float]] = {c: dict.fromkeys(self.phases, 0.0) for c in self.circuits}
        for cid, plug in self.chargers.items():
            plug.step(now, t, dt, nominal)
            watts = 0.0
            for leg, amps in plug.legs.items():
                if amps <= 0:
                    continue
                phase = str(plug.spec.legs[leg])
                power[phase] = power.get(phase, 0.0) + amps * voltage.get(phase, nominal)
                watts += amps * voltage.get(phase, nominal)
                if plug.spec.circuit:
                    circuit_current[plug.spec.circuit][phase] += amps
            loads[cid] = watts
            load_current[cid] = plug.current
        if self.boiler is not None:
            watts = self.boiler.step(now, dt)
            phase = str(self.boiler.spec.phase)
            power[phase] = power.get(phase, 0.0) + watts
            loads[self.boiler.spec.id] = watts
            load_current[self.boiler.spec.id] = watts / voltage.get(phase, nominal)
        solar = self.solar.power(now)
        for phase in self.phases:
            power[phase] = power.get(phase, 0.0) - solar / n
        battery_power = 0.0
        if self.battery is not None:
            battery_power = self.battery.step(sum(power.values()), dt)
            for phase in self.phases:
                power[phase] -= battery_power / n
        grid_current: dict[str, float] = {}
        new_voltage: dict[str, float] = {}
        for phase in self.phases:
            amps = power[phase] / voltage.get(phase, nominal)
            grid_current[phase] = amps
            new_voltage[phase] = nominal - 0.25 * amps  # the feeder's resistance
        tripped = [f"main/{p}" for p in self.fuse.step(grid_current, dt, t)]
        for cid, fuse in self.circuits.items():
            tripped += [f"{cid}/{p}" for p in fuse.step(circuit_current[cid], dt, t)]
        self.state = SiteState(
            at=now, t=t, grid_current=grid_current, grid_power=power, voltage=new_voltage, house=house,
            solar=solar, battery_power=battery_power, battery_soc=self.battery.soc if self.battery else None,
            loads=loads, load_current=load_current,
            boiler_temperature=self.boiler.temperature if self.boiler else None,
            appliances=self.household.running(now), tripped=tripped)
        return self.state
