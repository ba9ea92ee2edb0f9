"""A small physics loop around the pure core: chargers that follow their setpoints with a lag, a house that
steps, a meter that reads ``grid = house + Σ actual draw`` every second, and a decision every second.

The loop only uses what the allocator service would see: load states reporting what each charger really
draws (or nothing, for a charger without a meter), a site measurement, and the memory each decision leaves
for the next. It is the proof behind docs/allocator.md "What is guaranteed about measured current".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.allocator.core import allocate
from shared.models import CurrentReading, Leg, LoadKind, LoadMemory, LoadState, LoadStatus, Phase, SiteMeasurement
from shared.models.allocation import Allocation, LoadInput, SiteMemory, Snapshot
from shared.models.settings import SiteSettings

from .kit import NOW, SITE

LEGS = (Leg.L1, Leg.L2, Leg.L3)


@dataclass
class Car:
    """A charger with a car: it follows a new setpoint ``lag`` seconds after it was sent (a later setpoint
    replaces one it has not followed yet; one that keeps it below what it draws does not delay a decrease
    already under way), draws at most ``own_max`` (the car's own limit) and nothing below its 6 A minimum.
    From ``arrives`` on it is plugged in (before: idle, drawing nothing)."""

    name: str
    phases: str
    arrives: float = 0.0
    own_max: float = 32.0
    max_current: float = 16.0
    #: False: a charger without a meter, its state reports no draw.
    metered: bool = True
    #: Seconds each successive setpoint change takes to be followed (cycled).
    lags: tuple[float, ...] = (5.0,)
    actual: float = 0.0
    setpoint: float = 0.0
    pending: tuple[float, float] | None = None  # (when, value)
    changes: int = 0
    memory: LoadMemory = field(default_factory=LoadMemory)

    def send(self, t: float, current: float) -> None:
        """A new setpoint (the charger works in 0.1 A steps, rounding down: a change below that is none)."""
        current = math.floor(current * 10.0 + 1e-6) / 10.0
        if current == self.setpoint:
            return
        self.setpoint = current
        lag = self.lags[self.changes % len(self.lags)]
        self.changes += 1
        value = 0.0 if current < 6.0 else min(current, self.own_max)
        when = t + lag
        if self.pending is not None and self.pending[1] < self.actual and value < self.actual:
            when = min(when, self.pending[0])  # already on its way down: a new lower limit does not restart it
        self.pending = (when, value)

    def step(self, t: float) -> None:
        if self.pending is not None and self.pending[0] <= t:
            self.actual = self.pending[1]
            self.pending = None

    def per_phase(self) -> dict[Phase, float]:
        out: dict[Phase, float] = {}
        for p in self.phases:
            out[Phase(p)] = out.get(Phase(p), 0.0) + self.actual
        return out

    def state(self, ts: datetime, plugged: bool) -> LoadState:
        legs = {LEGS[i]: Phase(p) for i, p in enumerate(self.phases)}
        return LoadState(
            site=SITE,
            load=self.name,
            kind=LoadKind.EVSE,
            ts=ts,
            legs=legs,
            phases_in_use=list(legs),
            min_current=6.0,
            max_current=self.max_current,
            draw=self.per_phase() if self.metered else {},
            status=LoadStatus.ACTIVE if plugged else LoadStatus.IDLE,
        )


@dataclass
class Record:
    t: float
    measured: dict[Phase, float]
    house: dict[Phase, float]
    allocation: Allocation


def run(
    settings: SiteSettings,
    cars: list[Car],
    house_steps: list[tuple[float, dict[Phase, float]]],
    seconds: int,
) -> list[Record]:
    """Simulate ``seconds`` seconds: each second the cars follow, the meter reads, the allocator decides.

    The cars are copied at rest first: the given ones are not changed (hypothesis may run an example twice)."""
    cars = [replace(c, actual=0.0, setpoint=0.0, pending=None, changes=0, memory=LoadMemory()) for c in cars]
    house = dict.fromkeys(settings.phases, 0.0)
    steps = sorted(house_steps, key=lambda s: s[0])
    site_memory = SiteMemory()
    records: list[Record] = []
    for second in range(seconds):
        t = float(second)
        now = NOW + timedelta(seconds=t)
        while steps and steps[0][0] <= t:
            house.update(steps.pop(0)[1])
        for car in cars:
            car.step(t)
        measured = dict(house)
        for car in cars:
            for p, amps in car.per_phase().items():
                if p in measured:
                    measured[p] += amps
        measurement = SiteMeasurement(
            site=SITE,
            ts=now,
            grid_current={p: CurrentReading(ts=now, value=v) for p, v in measured.items()},
        )
        loads = [
            LoadInput(state=car.state(now, t >= car.arrives), memory=car.memory)
            for car in cars
        ]
        snapshot = Snapshot(settings=settings, measurement=measurement, loads=loads, memory=site_memory)
        allocation = allocate(snapshot, now)
        records.append(Record(t, measured, dict(house), allocation))
        site_memory = allocation.memory
        for car in cars:
            decision = allocation.decision(car.name)
            car.memory = decision.memory
            car.send(t, decision.current)
    return records
