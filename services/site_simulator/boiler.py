"""A hot water boiler: a resistive element behind a relay, its own thermostat, a tank that cools and
is drawn from."""

from __future__ import annotations

from datetime import datetime, timedelta

from .scenario import BoilerSpec

WATER_HEAT = 4186.0  # J per kg and K
COLD_WATER = 10.0
ROOM = 20.0
DRAW_SPREAD = 600.0  # a shower takes ten minutes


class Boiler:
    def __init__(self, spec: BoilerSpec, day_start: datetime) -> None:
        self.spec = spec
        self.temperature = spec.temperature
        self.relay = False
        self.heating = False
        self.energy_wh = 0.0
        midnight = day_start.replace(hour=0, minute=0, second=0, microsecond=0)
        self.draws = sorted((midnight + timedelta(hours=t.hour, minutes=t.minute), litres) for t, litres in spec.draws)

    @property
    def power(self) -> float:
        return self.spec.power if self.heating else 0.0

    def step(self, now: datetime, dt: float) -> float:
        """Advance ``dt`` seconds; the element's power (W)."""
        spec = self.spec
        # the element's own thermostat: off at the maximum, on again 3 K below it
        if self.temperature >= spec.max_temperature:
            self.heating = False
        elif self.relay and self.temperature < spec.max_temperature - 3.0:
            self.heating = True
        if not self.relay:
            self.heating = False
        capacity = spec.volume * WATER_HEAT
        heat = self.power - spec.loss * (self.temperature - ROOM)
        self.temperature += heat * dt / capacity
        for start, litres in self.draws:
            t = (now - start).total_seconds()
            if 0 <= t < DRAW_SPREAD:
                share = litres * min(dt, DRAW_SPREAD - t) / DRAW_SPREAD
                self.temperature -= share / spec.volume * (self.temperature - COLD_WATER)
        self.energy_wh += self.power * dt / 3600.0
        return self.power
