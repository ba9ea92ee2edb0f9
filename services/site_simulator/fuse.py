"""Would the fuse have blown? Per phase, overload is integrated against a time-current trip curve.

A trip curve gives, for a current of ``m`` times the rated current, the time the device takes to trip
when that current flows steadily. For a current that changes, each moment uses up ``dt / t(m)`` of the
device's thermal budget (Miner's rule); the budget recovers exponentially (``cooling`` seconds) while the
current is below the no-trip level; the device trips when the used budget reaches 1. Above the magnetic
threshold (breakers) or the curve's fastest point, it trips at once.

The built-in curves are the middle of the bands the standards allow:

* IEC 60898-1 type **B** / **C** breakers: no trip at 1.13 × In for an hour, trip within the hour at
  1.45 × In, 1-60 s at 2.55 × In, magnetic (instant) from 3-5 × In (B) or 5-10 × In (C).
* IEC 60269 **gG** fuses (16-63 A): no fuse below 1.25 × In, within the hour at 1.6 × In.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Literal

CurveName = Literal["B", "C", "gG"]


@dataclass(frozen=True, slots=True)
class TripCurve:
    """A time-current curve: points (multiple of In, seconds to trip), log-log interpolated."""

    name: str
    #: Below this multiple nothing is used up (the conventional non-tripping current).
    no_trip: float
    points: tuple[tuple[float, float], ...]
    #: From this multiple on the device trips at once (breaker magnetic release).
    instant: float
    #: Time constant of the thermal recovery below ``no_trip`` (s).
    cooling: float = 600.0

    def trip_time(self, multiple: float) -> float:
        """Seconds to trip at a steady ``multiple`` of the rated current (``inf``: never)."""
        if multiple <= self.no_trip:
            return math.inf
        if multiple >= self.instant:
            return 0.0
        xs = [p[0] for p in self.points]
        if multiple <= xs[0]:  # between no_trip and the first point: extend towards infinity
            x0, t0 = self.points[0]
            span = (multiple - self.no_trip) / (x0 - self.no_trip)
            return t0 / max(span, 1e-9)
        i = bisect.bisect_right(xs, multiple)
        if i >= len(xs):
            return self.points[-1][1]
        (x0, t0), (x1, t1) = self.points[i - 1], self.points[i]
        f = (math.log(multiple) - math.log(x0)) / (math.log(x1) - math.log(x0))
        return math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0)))


CURVES: dict[str, TripCurve] = {
    "B": TripCurve("IEC 60898 type B", 1.13, ((1.45, 1200.0), (2.0, 120.0), (2.55, 25.0), (3.0, 10.0)), 4.0),
    "C": TripCurve("IEC 60898 type C", 1.13, ((1.45, 1200.0), (2.0, 120.0), (2.55, 25.0), (5.0, 4.0)), 7.5),
    "gG": TripCurve("IEC 60269 gG", 1.25, ((1.6, 1800.0), (2.0, 300.0), (3.0, 30.0), (5.0, 3.0), (8.0, 0.3)),
                    12.0, cooling=900.0),
}


@dataclass(slots=True)
class PhaseFuse:
    """One phase's protective device: thermal budget used, trips counted, overload time and peak."""

    rated: float
    curve: TripCurve
    used: float = 0.0
    trips: int = 0
    overload_seconds: float = 0.0
    peak: float = 0.0
    trip_times: list[float] = field(default_factory=list)

    def step(self, current: float, dt: float, at: float = 0.0) -> bool:
        """Let ``current`` (A, either direction) flow for ``dt`` seconds; True when the device trips."""
        amps = abs(current)
        self.peak = max(self.peak, amps)
        if dt <= 0:
            return False
        if amps > self.rated:
            self.overload_seconds += dt
        multiple = amps / self.rated
        t = self.curve.trip_time(multiple)
        if math.isinf(t):
            self.used *= math.exp(-dt / self.curve.cooling)
            return False
        self.used += dt / t if t > 0 else math.inf
        if self.used >= 1.0:
            self.trips += 1
            self.trip_times.append(at)
            self.used = 0.0  # someone resets it; the simulation goes on counting
            return True
        return False


class FuseModel:
    """Every phase of one feed (the main connection or a circuit)."""

    def __init__(self, name: str, phases: list[str], rated: float, curve: CurveName | str = "B") -> None:
        if curve not in CURVES:
            raise ValueError(f"unknown trip curve {curve!r}; known: {', '.join(CURVES)}")
        self.name = name
        self.rated = rated
        self.curve = CURVES[curve]
        self.phases = {p: PhaseFuse(rated, self.curve) for p in phases}

    def step(self, currents: dict[str, float], dt: float, at: float = 0.0) -> list[str]:
        """Feed one step of per-phase currents; the phases that tripped."""
        return [p for p, fuse in self.phases.items() if fuse.step(currents.get(p, 0.0), dt, at)]

    @property
    def trips(self) -> int:
        return sum(f.trips for f in self.phases.values())

    @property
    def overload_seconds(self) -> float:
        return max((f.overload_seconds for f in self.phases.values()), default=0.0)

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name, "rated": self.rated, "curve": self.curve.name, "trips": self.trips,
            "phases": {p: {"peak": round(f.peak, 2), "overload_seconds": round(f.overload_seconds, 1),
                           "trips": f.trips, "thermal_used": round(f.used, 4)} for p, f in self.phases.items()},
        }
