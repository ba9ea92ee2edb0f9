"""The house: a base load per phase shaped over the day, plus appliances that switch on and off.

Everything random is drawn from the scenario's seed when the day is planned, so a scenario gives the
same day every run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from .scenario import HouseholdSpec


@dataclass(frozen=True, slots=True)
class ApplianceRun:
    name: str
    phase: str
    start: datetime
    power: float
    duration: float
    tail_power: float
    tail: float

    def power_at(self, now: datetime) -> float:
        t = (now - self.start).total_seconds()
        if 0 <= t < self.duration:
            return self.power
        if self.duration <= t < self.duration + self.tail:
            return self.tail_power
        return 0.0


def daily_shape(hour: float) -> float:
    """Base load factor over the day: low at night, a morning bump, high in the evening."""
    morning = 0.6 * math.exp(-(((hour - 7.5) / 1.2) ** 2))
    evening = 1.0 * math.exp(-(((hour - 19.0) / 2.2) ** 2))
    return 0.7 + morning + evening


class Household:
    """Non-controllable consumption of the site, per phase (W)."""

    def __init__(self, spec: HouseholdSpec, phases: list[str], day_start: datetime, seed: int) -> None:
        self.spec = spec
        self.phases = phases
        self.rng = random.Random(seed)
        self.runs: list[ApplianceRun] = []
        midnight = day_start.replace(hour=0, minute=0, second=0, microsecond=0)
        for appliance in spec.appliances:
            starts = [midnight + timedelta(hours=t.hour, minutes=t.minute) for t in appliance.starts]
            starts += [midnight + timedelta(seconds=self.rng.uniform(6 * 3600, 23 * 3600))
                       for _ in range(appliance.random_starts)]
            for start in starts:
                shifted = start + timedelta(seconds=self.rng.uniform(-appliance.jitter, appliance.jitter))
                self.runs.append(ApplianceRun(appliance.name, str(appliance.phase), shifted, appliance.power,
                                              appliance.duration, appliance.tail_power, appliance.tail))
        self._noise = [1.0 for _ in phases]

    def power(self, now: datetime) -> dict[str, float]:
        """Per-phase power now (W)."""
        hour = now.hour + now.minute / 60 + now.second / 3600
        shape = daily_shape(hour)
        out: dict[str, float] = {}
        for i, phase in enumerate(self.phases):
            # a slow random walk around 1 keeps the base load from being a flat line
            self._noise[i] += self.rng.gauss(0.0, 0.02) - 0.05 * (self._noise[i] - 1.0)
            factor = min(max(self._noise[i], 1 - self.spec.noise), 1 + self.spec.noise)
            out[phase] = self.spec.base_power[i] * shape * factor
        for run in self.runs:
            out[run.phase] = out.get(run.phase, 0.0) + run.power_at(now)
        return out

    def running(self, now: datetime) -> list[str]:
        return [r.name for r in self.runs if r.power_at(now) > 0]
