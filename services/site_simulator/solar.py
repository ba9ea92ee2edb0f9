"""Solar production: a clear-sky curve over the day, dimmed by clouds that come and go (seeded)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from .scenario import SolarSpec


def clear_sky(spec: SolarSpec, now: datetime) -> float:
    """Clear-sky AC power (W): a sine-like arc between sunrise and sunset, flatter at the edges."""
    hour = now.hour + now.minute / 60 + now.second / 3600
    noon = spec.noon.hour + spec.noon.minute / 60
    x = (hour - (noon - spec.day_length / 2)) / spec.day_length
    if not 0.0 < x < 1.0:
        return 0.0
    power: float = spec.peak_power * math.sin(math.pi * x) ** 1.6
    if spec.inverter_power is not None:
        power = min(power, spec.inverter_power)
    return power


class Solar:
    """Solar power with clouds: alternating clear and cloudy spells whose lengths are drawn at random."""

    def __init__(self, spec: SolarSpec, start: datetime, duration: float, seed: int) -> None:
        self.spec = spec
        rng = random.Random(seed * 7919 + 17)
        self.clouds: list[tuple[datetime, datetime, float]] = []
        if spec.clouds > 0:
            t = start
            end = start + timedelta(seconds=duration)
            mean_cloud = spec.cloud_length
            mean_clear = mean_cloud * (1 - spec.clouds) / max(spec.clouds, 1e-6)
            while t < end:
                t += timedelta(seconds=rng.expovariate(1 / max(mean_clear, 1.0)))
                length = rng.expovariate(1 / mean_cloud)
                depth = spec.cloud_transmission * rng.uniform(0.6, 1.4)
                self.clouds.append((t, t + timedelta(seconds=length), min(depth, 1.0)))
                t += timedelta(seconds=length)

    def power(self, now: datetime) -> float:
        power = clear_sky(self.spec, now)
        for begin, end, transmission in self.clouds:
            if begin <= now < end:
                # soft edges: a cloud moves in and out over a minute
                edge = min((now - begin).total_seconds(), (end - now).total_seconds()) / 60.0
                dim = 1 - (1 - transmission) * min(1.0, edge)
                return power * dim
            if begin > now:
                break
        return power
