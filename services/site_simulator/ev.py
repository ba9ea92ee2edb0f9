"""An electric car on a charger: it follows the pilot limit after a short lag, never below 6 A, takes
less near full (constant-voltage taper) and stops at its target state of charge."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .scenario import EvSpec

#: IEC 61851: a pilot below 6 A means "do not charge".
MIN_PILOT = 6.0
CHARGE_EFFICIENCY = 0.92


@dataclass(slots=True)
class PendingLimit:
    limit: float
    at: float  # simulated seconds


class Ev:
    def __init__(self, spec: EvSpec, seed: int) -> None:
        self.spec = spec
        self.soc = spec.soc
        self.rng = random.Random(seed)
        #: The pilot limit the car follows now, and a newer one it will follow after its lag.
        self.following = 0.0
        self.pending: PendingLimit | None = None
        self.seen = 0.0
        self.current = 0.0
        self.energy_wh = 0.0

    @property
    def full(self) -> bool:
        return self.soc >= self.spec.target_soc - 1e-6

    def acceptance(self) -> float:
        """The most the car takes per phase now (A)."""
        spec = self.spec
        if self.full:
            return 0.0
        if self.soc <= spec.taper_from:
            return spec.max_current
        span = max(100.0 - spec.taper_from, 1e-6)
        return max(1.0, spec.max_current * (100.0 - self.soc) / span)

    def step(self, now: float, dt: float, offered: float, voltage: float = 230.0, phases: int | None = None) -> float:
        """Advance ``dt`` seconds with the charger offering ``offered`` A on ``phases`` (None: all the car's);
        the current drawn per phase."""
        if offered != self.seen:
            self.seen = offered
            lo, hi = self.spec.lag
            self.pending = PendingLimit(offered, now + self.rng.uniform(lo, hi))
        if self.pending is not None and now >= self.pending.at:
            self.following = self.pending.limit
            self.pending = None
        if self.following < MIN_PILOT:
            self.current = 0.0
        else:
            self.current = min(self.following, self.acceptance(), self.spec.max_current)
        energy = self.current * voltage * (self.spec.phases if phases is None else phases) * dt / 3600.0
        self.energy_wh += energy
        self.soc = min(100.0, self.soc + energy * CHARGE_EFFICIENCY / self.spec.capacity * 100.0)
        return self.current
