"""Plausibility: non-finite, out of range and jumping readings are rejected; a confirmed jump is real."""

from __future__ import annotations

import math

import pytest

from services.meter_bridge.config import Plausibility
from services.meter_bridge.normalizer import FieldKey, Update
from services.meter_bridge.sample import Sample
from services.meter_bridge.trust import Freshness, Implausible, PlausibilityGate
from shared.models.base import Phase

A = FieldKey("grid_current", Phase.A)


def test_non_finite_sample_is_rejected() -> None:
    gate = PlausibilityGate(Plausibility())
    with pytest.raises(Implausible, match="non-finite"):
        gate.check_sample(Sample(current={1: math.nan}))
    with pytest.raises(Implausible, match="non-finite"):
        gate.check_sample(Sample(total_power=math.inf))


@pytest.mark.parametrize(
    "update",
    [Update(A, 10_000.0), Update(FieldKey("voltage", Phase.B), 900.0), Update(FieldKey("grid_power"), -3e5),
     Update(FieldKey("battery_soc"), 101.0)],
)
def test_out_of_range_is_rejected(update: Update) -> None:
    with pytest.raises(Implausible):
        PlausibilityGate(Plausibility()).check_updates([update])


def test_jump_is_rejected_once_and_accepted_when_confirmed() -> None:
    gate = PlausibilityGate(Plausibility(max_current_step=20))
    gate.check_updates([Update(A, 5.0)])
    with pytest.raises(Implausible, match="jump"):
        gate.check_updates([Update(A, 80.0)])
    gate.check_updates([Update(A, 82.0)])  # the new level held: accepted
    gate.check_updates([Update(A, 90.0)])
    with pytest.raises(Implausible, match="jump"):
        gate.check_updates([Update(A, 0.0)])


def test_freshness_reports_a_silent_source_once() -> None:
    fresh = Freshness(stale_after=1.0)
    fresh.seen("grid", 10.0)
    assert fresh.gone_silent(10.5) == []
    assert fresh.gone_silent(11.2) == ["grid"]
    assert fresh.gone_silent(12.0) == []


IMPORT = FieldKey("grid_import_energy")


def test_energy_register_never_goes_backwards_unless_reset_or_confirmed() -> None:
    """A lower register value is dropped (the other updates pass); a fall to near zero is a reset; a lower level
    that the next reading counts on from is a new register (a replaced meter), so nothing is locked out."""
    gate = PlausibilityGate(Plausibility())
    power = Update(FieldKey("grid_power"), 500.0)
    kept, notices = gate.screen_energy([Update(IMPORT, 10_000.0), power])
    assert kept == [Update(IMPORT, 10_000.0), power] and notices == []
    kept, notices = gate.screen_energy([Update(IMPORT, 9_000.0), power])
    assert kept == [power] and [n.code for n in notices] == ["energy_backwards"]
    kept, notices = gate.screen_energy([Update(IMPORT, 10_001.0)])  # the glitch is gone
    assert kept == [Update(IMPORT, 10_001.0)] and notices == []
    kept, notices = gate.screen_energy([Update(IMPORT, 2_000.0)])
    assert kept == [] and [n.code for n in notices] == ["energy_backwards"]
    kept, notices = gate.screen_energy([Update(IMPORT, 2_004.0)])  # counts on from the lower level
    assert kept == [Update(IMPORT, 2_004.0)] and [n.code for n in notices] == ["energy_reset"]
    kept, notices = gate.screen_energy([Update(IMPORT, 12.0)])  # the device reset its counters
    assert kept == [Update(IMPORT, 12.0)] and [n.code for n in notices] == ["energy_reset"]
    kept, notices = gate.screen_energy([Update(IMPORT, -1.0)])
    assert kept == [] and [n.code for n in notices] == ["implausible"]


def test_non_finite_energy_register_rejects_the_reading() -> None:
    with pytest.raises(Implausible, match="non-finite"):
        PlausibilityGate(Plausibility()).check_sample(Sample(energy_forward=math.inf))
