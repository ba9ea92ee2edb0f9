"""Normalization rules: phase mapping, polarity, current from power, total split, battery sign."""

from __future__ import annotations

from typing import Any

import pytest

from services.meter_bridge.config import MeterBridgeConfig, SourceBase
from services.meter_bridge.normalizer import FieldKey, Generation, normalize
from services.meter_bridge.sample import Sample
from shared.models.base import Phase

ABC = [Phase.A, Phase.B, Phase.C]


def source(**options: Any) -> SourceBase:
    raw = {"id": "m", "driver": "shelly", "prefix": "x", **options}
    site = MeterBridgeConfig.model_validate({"sites": {"s": {"sources": [raw]}}}).sites["s"]
    return site.sources[0]


def values(sample: Sample, **options: Any) -> dict[str, tuple[float, bool]]:
    out = normalize(source(**options), sample, nominal_voltage=230.0, site_phases=ABC)
    return {str(u.key): (round(u.value, 3), u.derived) for u in out.updates}


def test_unsigned_current_takes_the_sign_of_its_phase_power() -> None:
    got = values(Sample(current={1: 4.0, 2: 2.0}, power={1: 900.0, 2: -450.0}))
    assert got["grid_current.A"] == (4.0, False)
    assert got["grid_current.B"] == (-2.0, False)
    assert got["grid_power"] == (450.0, False)


def test_phase_map_and_inversion() -> None:
    got = values(Sample(current={1: 4.0, 2: 2.0, 3: 1.0}, power={1: 900.0, 2: -450.0, 3: 200.0}),
                 phase_map={1: "C", 2: "A", 3: "B"}, invert=True)
    assert got["grid_current.C"] == (-4.0, False)
    assert got["grid_current.A"] == (2.0, False)
    assert got["grid_current.B"] == (-1.0, False)
    assert got["grid_power"] == (-650.0, False)


def test_current_from_power_uses_measured_voltage_else_nominal() -> None:
    got = values(Sample(power={1: 2400.0, 2: -1150.0}, voltage={1: 240.0}))
    assert got["grid_current.A"] == (10.0, True)
    assert got["grid_current.B"] == (-5.0, True)  # nominal 230 V, sign kept
    assert got["voltage.A"] == (240.0, False)


def test_total_only_worst_case_puts_import_on_every_phase_and_says_so() -> None:
    out = normalize(source(), Sample(total_power=4600.0), nominal_voltage=230.0, site_phases=ABC)
    assert {str(u.key): u.value for u in out.updates if u.key.field == "grid_current"} == {
        "grid_current.A": 20.0, "grid_current.B": 20.0, "grid_current.C": 20.0}
    assert all(u.derived for u in out.updates if u.key.field == "grid_current")
    assert out.notes and "worst case" in out.notes[0]
    # an export proves generation behind the meter, of a size nobody said: no safe per-phase value
    export = normalize(source(), Sample(total_power=-4600.0), nominal_voltage=230.0, site_phases=ABC)
    assert not [u for u in export.updates if u.key.field == "grid_current"]
    assert export.unsplit is not None and "left out" in export.unsplit


def test_total_only_even_split_without_generation() -> None:
    out = normalize(source(split="even"), Sample(total_power=6900.0), nominal_voltage=230.0, site_phases=ABC)
    assert out.get(FieldKey("grid_current", Phase.C)) is not None
    assert [round(u.value, 3) for u in out.updates if u.key.field == "grid_current"] == [10.0, 10.0, 10.0]
    assert "evenly" in out.notes[0]


# Issue 13.5: phase A exports 25 A (solar on A), B imports 20 A, C 2 A: the meter's total is -690 W.
REAL = {Phase.A: -25.0, Phase.B: 20.0, Phase.C: 2.0}


@pytest.mark.parametrize("policy", ["worst_case", "even"])
def test_with_generation_behind_the_meter_each_phase_is_bounded_by_total_plus_generation(policy: str) -> None:
    total = sum(REAL.values()) * 230.0
    assert total == pytest.approx(-690.0)
    solar = 6000.0  # what the site's solar source measures now (A's 25 A export is 5 750 W of it at least)
    out = normalize(source(split=policy), Sample(total_power=total), nominal_voltage=230.0, site_phases=ABC,
                    generation=Generation(present=True, watts=solar))
    got = {u.key.phase: u.value for u in out.updates if u.key.field == "grid_current"}
    assert set(got) == set(ABC)
    assert all(got[p] >= REAL[p] for p in ABC), got  # B's real 20 A import is within the bound, not 0 A
    assert got[Phase.B] == pytest.approx((total + solar) / 230.0)
    assert out.unsplit is None and "total + generation" in out.notes[0]


@pytest.mark.parametrize("generation", [Generation(present=True), Generation(present=True, watts=300.0)])
def test_with_generation_of_unknown_size_the_phases_are_unknown(generation: Generation) -> None:
    # unknown, or less than the export the meter shows (so not all of it is measured)
    out = normalize(source(), Sample(total_power=-690.0), nominal_voltage=230.0, site_phases=ABC,
                    generation=generation)
    assert not [u for u in out.updates if u.key.field == "grid_current"]
    assert out.unsplit is not None
    assert [u.value for u in out.updates if u.key.field == "grid_power"] == [-690.0]  # the total itself is kept


@pytest.mark.parametrize(("sign", "expected"), [("discharge_positive", 1500.0), ("charge_positive", -1500.0)])
def test_battery_sign_convention(sign: str, expected: float) -> None:
    got = values(Sample(total_power=1500.0, battery_soc=40.0), role="battery", battery_sign=sign)
    assert got["battery_power"] == (expected, False)
    assert got["battery_soc"] == (40.0, False)
    assert "grid_power" not in got


def test_solar_role_and_feeds_filter() -> None:
    got = values(Sample(power={1: 1000.0, 2: 1100.0}), role="solar")
    assert got == {"solar_power": (2100.0, False)}
    only_current = values(Sample(current={1: 3.0}, power={1: 700.0}, voltage={1: 230.0}), feeds=["grid_current"])
    assert set(only_current) == {"grid_current.A"}


def test_a_partial_reading_gives_no_total() -> None:
    got = values(Sample(power={2: 1150.0}, partial=True))
    assert got == {"grid_current.B": (5.0, True)}  # one phase of three is not the grid power
    assert values(Sample(power={2: 1150.0}))["grid_power"] == (1150.0, False)


def test_a_partial_total_is_not_split_over_phases() -> None:
    got = values(Sample(total_power=2300.0, partial=True))
    assert got == {"grid_power": (2300.0, False)}  # the currents come on their own topics
