"""A small closed loop around the pure allocator core: a site's physics, stepped, with the core deciding.

The house and the solar power are functions of the time (W per phase, W); a self-consumption battery
charges from what would be exported and discharges into what would be imported, within its power limits,
its reserve and its charge ceiling (a BMS that stops at 97 %, say); loads follow their setpoint with a lag
(first order, ``lag`` seconds). Each step: the physics settles, the grid meter reads, the policy decides,
the energies are counted. A :class:`Policy` is the core (:class:`CorePolicy`, its memory fed back as the
service does) or a comparison (``services.allocator.evcc_policy``).

What a run gives: starts per load, the energies (import, export, solar, per load), self-consumption, and
a trace of every step for tables of steady states.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.allocator.core import allocate
from services.allocator.evcc_policy import EvccLoad, EvccTimers, evcc_decide
from shared.models import (
    CurrentReading,
    Leg,
    LoadKind,
    LoadMemory,
    LoadSettings,
    LoadState,
    LoadStatus,
    Mode,
    PercentReading,
    Phase,
    PowerReading,
    SiteMeasurement,
    SiteSettings,
)
from shared.models.allocation import LoadInput, SiteMemory, Snapshot

START = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
LEGS = (Leg.L1, Leg.L2, Leg.L3)
INF = float("inf")


@dataclass
class Load:
    """A controllable load: an EV (``lo``..``hi`` A per leg) or an on/off load (``rated`` W)."""

    id: str
    mode: Mode
    on: str = "ABC"
    lo: float = 6.0
    hi: float = 16.0
    kind: LoadKind = LoadKind.EVSE
    rated: float | None = None
    priority: int = 5
    #: Seconds the draw takes to follow a new setpoint (time constant).
    lag: float = 5.0
    #: Present (plugged in, wanting power) from/until these seconds after the start; ``wanted_wh``: then full.
    arrives: float = 0.0
    leaves: float = INF
    wanted_wh: float = INF
    setpoint: float = 0.0
    draw: float = 0.0
    #: The draw as the load last reported it (see ``Day.report_every``).
    reported: float = 0.0
    starts: int = 0
    energy_wh: float = 0.0

    def active(self, t: float) -> bool:
        return self.arrives <= t < self.leaves and self.energy_wh < self.wanted_wh

    def phases(self) -> list[Phase]:
        return [Phase(p) for p in self.on]


@dataclass
class HomeBattery:
    """A battery behind a hybrid inverter doing self-consumption (discharge positive, W)."""

    capacity_wh: float = 10_000.0
    soc: float = 50.0
    max_charge_w: float = 5000.0
    max_discharge_w: float = 5000.0
    reserve_soc: float = 5.0
    #: The BMS stops charging here (100: a battery that fills up).
    ceiling_soc: float = 100.0
    power: float = 0.0

    def settle(self, site_w: float) -> float:
        """The power it takes up for a site that would draw ``site_w`` without it (import positive)."""
        if site_w > 0:
            self.power = min(site_w, self.max_discharge_w) if self.soc > self.reserve_soc else 0.0
        else:
            self.power = max(site_w, -self.max_charge_w) if self.soc < self.ceiling_soc else 0.0
        return self.power

    def run(self, dt: float) -> None:
        self.soc -= self.power * dt / 3600.0 / self.capacity_wh * 100.0
        self.soc = min(100.0, max(0.0, self.soc))


class Policy(Protocol):
    def decide(
        self, settings: SiteSettings, measurement: SiteMeasurement, loads: list[LoadInput], now: datetime
    ) -> dict[str, float]:
        """The per-leg current each load may draw now (0: paused)."""
        ...


class CorePolicy:
    """The allocator core, its memory fed back from one decision to the next as the service does."""

    def __init__(self, memory: SiteMemory | None = None) -> None:
        self.site_memory = memory or SiteMemory()
        self.memory: dict[str, LoadMemory] = {}

    def decide(
        self, settings: SiteSettings, measurement: SiteMeasurement, loads: list[LoadInput], now: datetime
    ) -> dict[str, float]:
        inputs = [i.model_copy(update={"memory": self.memory.get(i.state.load, LoadMemory())}) for i in loads]
        snapshot = Snapshot(settings=settings, measurement=measurement, loads=inputs, memory=self.site_memory)
        allocation = allocate(snapshot, now)
        self.site_memory = allocation.memory
        self.memory = {d.load: d.memory for d in allocation.decisions}
        return {d.load: d.current if d.on else 0.0 for d in allocation.decisions}


class EvccPolicy:
    """evcc's PV-mode timers (their defaults) on the same inputs: the comparison of ``python -m bench quality``."""

    def __init__(self, timers: EvccTimers | None = None) -> None:
        self.timers = timers or EvccTimers()
        self.memory: dict[str, EvccLoad] = {}

    def decide(
        self, settings: SiteSettings, measurement: SiteMeasurement, loads: list[LoadInput], now: datetime
    ) -> dict[str, float]:
        snapshot = Snapshot(settings=settings, measurement=measurement, loads=loads)
        setpoints, self.memory = evcc_decide(snapshot, now, self.memory, self.timers)
        return setpoints


@dataclass
class Sample:
    t: float
    grid: dict[Phase, float]
    setpoints: dict[str, float]
    draws: dict[str, float]
    soc: float | None
    battery_w: float
    solar_w: float


@dataclass
class Record:
    samples: list[Sample] = field(default_factory=list)
    import_wh: float = 0.0
    export_wh: float = 0.0
    solar_wh: float = 0.0
    starts: dict[str, int] = field(default_factory=dict)
    energy_wh: dict[str, float] = field(default_factory=dict)

    @property
    def self_consumption(self) -> float:
        """The share of the solar energy used on site (1.0 without solar)."""
        return 1.0 if self.solar_wh <= 0 else max(0.0, 1.0 - self.export_wh / self.solar_wh)

    def tail(self, seconds: float) -> list[Sample]:
        """The samples of the last ``seconds``."""
        end = self.samples[-1].t
        return [s for s in self.samples if s.t >= end - seconds]


@dataclass
class Day:
    """A site's day: settings, the house (W per phase at t seconds), the solar power (W at t), the loads."""

    settings: SiteSettings
    house: Callable[[float], dict[Phase, float]]
    solar: Callable[[float], float]
    loads: list[Load]
    battery: HomeBattery | None = None
    start: datetime = START
    #: Seconds between decisions (one meter reading each).
    step: float = 10.0
    #: Seconds between the loads' own reports of their draw (a charger's meter values); 0: every step.
    report_every: float = 0.0


def _state(load: Load, site: str, now: datetime, active: bool) -> LoadInput:
    draw = load.reported
    legs = {LEGS[i]: Phase(p) for i, p in enumerate(load.on)}
    state = LoadState(
        site=site,
        load=load.id,
        kind=load.kind,
        ts=now,
        legs=legs,
        phases_in_use=list(legs),
        min_current=0.0 if load.kind is LoadKind.ONOFF else load.lo,
        max_current=0.0 if load.kind is LoadKind.ONOFF else load.hi,
        rated_power=load.rated,
        draw={p: draw for p in load.phases()} if draw > 0 else {},
        status=LoadStatus.ACTIVE if active else LoadStatus.IDLE,
    )
    settings = LoadSettings(site=site, load=load.id, ts=now, mode=load.mode, priority=load.priority)
    return LoadInput(state=state, settings=settings)


def run(day: Day, seconds: float, policy: Policy | None = None) -> Record:
    """Step the day for ``seconds`` with ``policy`` (the core by default)."""
    policy = policy or CorePolicy()
    settings = day.settings
    voltage = settings.voltage
    phases = list(settings.phases)
    n = len(phases)
    record = Record(starts={x.id: 0 for x in day.loads}, energy_wh={x.id: 0.0 for x in day.loads})
    dt = day.step
    steps = int(seconds / dt)
    for k in range(steps):
        t = k * dt
        now = day.start + timedelta(seconds=t)
        house = day.house(t)
        solar_w = day.solar(t)
        load_w = dict.fromkeys(phases, 0.0)
        for x in day.loads:
            for p in x.phases():
                load_w[p] += x.draw * voltage
        site_w = sum(house.get(p, 0.0) for p in phases) + sum(load_w.values()) - solar_w
        battery_w = day.battery.settle(site_w) if day.battery is not None else 0.0
        grid_w = {p: house.get(p, 0.0) + load_w[p] - (solar_w + battery_w) / n for p in phases}
        grid_a = {p: w / voltage for p, w in grid_w.items()}
        battery = day.battery
        measurement = SiteMeasurement(
            site=settings.site,
            ts=now,
            grid_current={p: CurrentReading(ts=now, value=a) for p, a in grid_a.items()},
            battery_soc=None if battery is None else PercentReading(ts=now, value=battery.soc),
            battery_power=None if battery is None else PowerReading(ts=now, value=battery_w),
            solar_power=PowerReading(ts=now, value=solar_w),
        )
        actives = {x.id: x.active(t) for x in day.loads}
        if day.report_every <= 0 or k % max(1, round(day.report_every / dt)) == 0:
            for x in day.loads:
                x.reported = x.draw
        inputs = [_state(x, settings.site, now, actives[x.id]) for x in day.loads]
        setpoints = policy.decide(settings, measurement, inputs, now)
        record.samples.append(
            Sample(t, grid_a, dict(setpoints), {x.id: x.draw for x in day.loads},
                   None if battery is None else battery.soc, battery_w, solar_w)
        )
        # Count the energies of this step, then let the loads follow their new setpoints.
        net_w = sum(grid_w.values())
        record.import_wh += max(0.0, net_w) * dt / 3600.0
        record.export_wh += max(0.0, -net_w) * dt / 3600.0
        record.solar_wh += solar_w * dt / 3600.0
        if battery is not None:
            battery.run(dt)
        for x in day.loads:
            x.energy_wh += x.draw * voltage * len(x.on) * dt / 3600.0
            record.energy_wh[x.id] = x.energy_wh
            new = setpoints.get(x.id, 0.0) if actives[x.id] else 0.0
            if new > 0.0 and x.setpoint <= 0.0:
                x.starts += 1
                record.starts[x.id] = x.starts
            x.setpoint = new
            goal = min(new, x.hi) if x.kind is not LoadKind.ONOFF else new
            follow = 1.0 - math.exp(-dt / x.lag) if x.lag > 0 else 1.0
            x.draw += (goal - x.draw) * follow
            if x.draw < 0.05:
                x.draw = 0.0
    return record


def flat(watts: float, phases: str = "ABC") -> Callable[[float], dict[Phase, float]]:
    """A house drawing ``watts`` spread evenly over ``phases``."""
    share = watts / len(phases)
    return lambda t: {Phase(p): share for p in phases}


def constant(watts: float) -> Callable[[float], float]:
    return lambda t: watts


def ramp(start_w: float, end_w: float, seconds: float) -> Callable[[float], float]:
    """From ``start_w`` to ``end_w`` over ``seconds``, then flat."""
    return lambda t: start_w + (end_w - start_w) * min(1.0, t / seconds)
