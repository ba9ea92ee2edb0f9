"""The site's picture: notes follow the latest currents, measured beats derived, stale fields go."""

from __future__ import annotations

from datetime import UTC, datetime

from services.meter_bridge.config import MeterBridgeConfig
from services.meter_bridge.normalizer import normalize
from services.meter_bridge.sample import Sample
from services.meter_bridge.site import SiteState
from shared.models.base import Phase

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def site_state() -> SiteState:
    config = MeterBridgeConfig.model_validate({"sites": {"home": {"stale_after": 5, "sources": [
        {"id": "grid", "driver": "mqtt_json", "values": [{"topic": "t", "unit": "W"}]}]}}}).sites["home"]
    return SiteState("home", config)


def apply(state: SiteState, sample: Sample, now: float) -> None:
    source = state.config.sources[0]
    state.apply("grid", normalize(source, sample, nominal_voltage=230.0, site_phases=list(Phase)), T0, now)


def test_split_note_lasts_as_long_as_the_split_currents() -> None:
    state = site_state()
    apply(state, Sample(total_power=2300.0), 0.0)
    m = state.measurement(T0)
    assert m.grid_current[Phase.A].derived and m.grid_current[Phase.A].value == 10.0
    assert any("worst case" in n for n in m.notes)
    apply(state, Sample(current={1: 4.0, 2: 1.0, 3: 0.5}, power={1: 920.0, 2: 230.0, 3: 115.0}), 1.0)
    m = state.measurement(T0)
    assert not any("worst case" in n for n in m.notes)
    assert m.grid_current[Phase.A].value == 4.0 and not m.grid_current[Phase.A].derived


def test_a_fresh_measured_current_is_not_overwritten_by_a_derived_one() -> None:
    state = site_state()
    apply(state, Sample(current={1: 4.0}, power={1: 920.0}, partial=True), 0.0)
    apply(state, Sample(power={1: 1150.0}, partial=True), 1.0)  # power alone: current derived (5 A)
    assert state.measurement(T0).grid_current[Phase.A].value == 4.0
    apply(state, Sample(power={1: 1150.0}, partial=True), 7.0)  # the measured one is stale by now
    assert state.measurement(T0).grid_current[Phase.A].value == 5.0


def test_stale_fields_are_dropped_with_their_notes_and_derived_solar() -> None:
    state = site_state()
    apply(state, Sample(total_power=1500.0), 0.0)
    m = state.measurement(T0)
    assert m.solar_power is not None and m.solar_power.value == 0.0 and m.solar_power.derived
    assert state.expire(4.0) == []
    dropped = state.expire(5.5)
    assert {str(k) for k in dropped} == {"grid_power", "grid_current.A", "grid_current.B", "grid_current.C"}
    m = state.measurement(T0)
    assert m.grid_current == {} and m.grid_power is None and m.solar_power is None and m.notes == []


def test_energy_registers_outlive_the_power_readings_until_energy_stale_after() -> None:
    """A meter may report its registers far less often than power (a Pro 3EM's emdata): between two reports the site's
    energy stays published, and goes only after ``energy_stale_after`` (300 s by default)."""
    state = site_state()
    apply(state, Sample(total_power=500.0, energy_forward=42_000.0, energy_reverse=1_000.0), 0.0)
    assert state.expire(60.0) != []  # the power went stale ...
    m = state.measurement(T0)
    assert m.grid_power is None
    assert m.grid_import_energy is not None and m.grid_import_energy.value == 42_000.0  # ... the registers not
    assert m.grid_export_energy is not None and m.grid_export_energy.value == 1_000.0
    assert {str(k) for k in state.expire(301.0)} == {"grid_import_energy", "grid_export_energy"}
    assert state.measurement(T0).grid_import_energy is None


def test_an_export_without_known_generation_clears_the_split_currents_at_once() -> None:
    state = site_state()
    apply(state, Sample(total_power=2300.0), 0.0)
    assert set(state.measurement(T0).grid_current) == set(Phase)
    apply(state, Sample(total_power=-690.0), 1.0)  # generation now shows, of unknown size
    m = state.measurement(T0)
    assert m.grid_current == {}  # not the earlier 10 A, not 0 A: unknown
    assert any("left out" in n for n in m.notes)


def test_generation_is_the_configured_capacity_else_the_measured_solar_and_battery() -> None:
    config = MeterBridgeConfig.model_validate({"sites": {"home": {"sources": [
        {"id": "grid", "driver": "mqtt_json", "values": [{"topic": "g", "unit": "W"}]},
        {"id": "pv", "driver": "mqtt_json", "role": "solar", "values": [{"topic": "p", "unit": "W"}]},
    ]}}}).sites["home"]
    state = SiteState("home", config)
    assert state.generation(Sample(total_power=100.0)).present
    assert state.generation(Sample(total_power=100.0)).watts is None  # no solar reading yet: unknown
    pv = config.sources[1]
    state.apply("pv", normalize(pv, Sample(total_power=4200.0), nominal_voltage=230.0, site_phases=list(Phase)),
                T0, 0.0)
    assert state.generation(Sample(total_power=100.0)).watts == 4200.0
    capped = SiteState("home", config.model_copy(update={"generation_power": 8000.0}))
    assert capped.generation(Sample(total_power=100.0)).watts == 8000.0
