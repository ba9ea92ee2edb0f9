"""The fuse model: trip curves in the bands the standards set, overload integrated over time."""

from __future__ import annotations

import math

import pytest

from services.site_simulator.fuse import CURVES, FuseModel, PhaseFuse


def run_steady(fuse: PhaseFuse, amps: float, seconds: float, dt: float = 1.0) -> float | None:
    """Seconds until the fuse trips at a steady current, None if it holds."""
    t = 0.0
    while t < seconds:
        t += dt
        if fuse.step(amps, dt, t):
            return t
    return None


@pytest.mark.parametrize("curve", ["B", "C"])
def test_breaker_holds_at_conventional_non_tripping_current_for_an_hour(curve: str) -> None:
    assert run_steady(PhaseFuse(25.0, CURVES[curve]), 25.0 * 1.13, 3600.0) is None


@pytest.mark.parametrize("curve", ["B", "C"])
def test_breaker_trips_within_the_hour_at_1_45_in(curve: str) -> None:
    tripped = run_steady(PhaseFuse(25.0, CURVES[curve]), 25.0 * 1.45, 3600.0)
    assert tripped is not None and tripped < 3600.0


def test_type_b_at_2_55_in_trips_between_1_and_60_seconds() -> None:
    tripped = run_steady(PhaseFuse(25.0, CURVES["B"]), 25.0 * 2.55, 120.0, dt=0.1)
    assert tripped is not None and 1.0 <= tripped <= 60.0


def test_magnetic_release_is_instant_for_b_but_not_for_c_at_5_in() -> None:
    assert CURVES["B"].trip_time(5.0) == 0.0
    assert CURVES["C"].trip_time(5.0) > 0.0
    assert CURVES["C"].trip_time(10.0) == 0.0


def test_gg_fuse_holds_at_1_25_in_and_blows_within_the_hour_at_1_6_in() -> None:
    assert run_steady(PhaseFuse(25.0, CURVES["gG"]), 25.0 * 1.25, 3600.0) is None
    tripped = run_steady(PhaseFuse(25.0, CURVES["gG"]), 25.0 * 1.6 * 1.01, 3600.0, dt=5.0)
    assert tripped is not None and tripped <= 3600.0


def test_trip_time_falls_as_the_current_rises() -> None:
    for curve in CURVES.values():
        times = [curve.trip_time(m) for m in (1.2, 1.5, 2.0, 3.0, 4.0)]
        finite = [t for t in times if not math.isinf(t)]
        assert finite == sorted(finite, reverse=True)


def test_short_overloads_cool_down_and_do_not_add_up_to_a_trip() -> None:
    fuse = PhaseFuse(25.0, CURVES["B"])
    for _ in range(10):  # 60 s at 1.6 x In, then 30 min at half load, ten times over
        run_steady(fuse, 40.0, 60.0)
        run_steady(fuse, 12.0, 1800.0, dt=10.0)
    assert fuse.trips == 0
    assert fuse.overload_seconds == pytest.approx(600.0)


def test_the_same_overload_without_pauses_trips() -> None:
    fuse = PhaseFuse(25.0, CURVES["B"])
    assert run_steady(fuse, 40.0, 600.0 * 10) is not None
    assert fuse.trips == 1


def test_model_counts_per_phase_and_peaks_in_either_direction() -> None:
    model = FuseModel("main", ["A", "B", "C"], 25.0, "B")
    model.step({"A": 10.0, "B": -30.0, "C": 0.0}, 1.0)
    assert model.phases["B"].peak == 30.0
    assert model.phases["B"].overload_seconds == 1.0
    assert model.phases["A"].overload_seconds == 0.0
    tripped = model.step({"A": 200.0}, 0.1)
    assert tripped == ["A"] and model.trips == 1


def test_unknown_curve_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown trip curve"):
        FuseModel("main", ["A"], 25.0, "Z")
