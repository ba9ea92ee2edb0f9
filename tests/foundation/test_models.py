"""Payload models are strict: finite numbers in physical ranges, no coercion, no unknown command fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.models import (
    ErrorReport,
    LoadKind,
    LoadSettingsSet,
    LoadState,
    Mode,
    SiteMeasurement,
    SiteSettings,
    SiteSettingsSet,
)

NOW = "2026-12-01T10:00:00Z"


def measurement(a: object) -> str:
    return json.dumps({"site": "home", "ts": NOW, "grid_current": {"A": {"value": a, "ts": NOW}}})


def test_valid_measurement_round_trips() -> None:
    m = SiteMeasurement.model_validate_json(measurement(12.5))
    assert m.grid_current["A"].value == 12.5
    again = SiteMeasurement.model_validate_json(m.model_dump_json())
    assert again == m
    assert m.v == 1


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_currents_are_rejected(bad: str) -> None:
    raw = measurement(0).replace('"value": 0', f'"value": {bad}')
    with pytest.raises(ValidationError):
        SiteMeasurement.model_validate_json(raw)


@pytest.mark.parametrize("bad", ["16", True, 10_000, -10_000, None])
def test_no_coercion_and_physical_ranges(bad: object) -> None:
    with pytest.raises(ValidationError):
        SiteMeasurement.model_validate_json(measurement(bad))


def test_timestamps_must_carry_a_zone_and_are_kept_in_utc() -> None:
    with pytest.raises(ValidationError):
        SiteMeasurement.model_validate_json(measurement(1).replace(NOW, "2026-12-01T10:00:00"))
    local = datetime(2026, 12, 1, 11, tzinfo=timezone(timedelta(hours=1)))
    assert ErrorReport(ts=local, service="x", topic="t", error="e", message="m").ts == datetime(2026, 12, 1, 10,
                                                                                                tzinfo=UTC)


def test_commands_refuse_unknown_fields_and_strings_for_numbers() -> None:
    assert LoadSettingsSet.model_validate_json('{"mode": "solar_only", "priority": 2}').mode is Mode.SOLAR_ONLY
    for raw in ['{"mood": "eco"}', '{"priority": "2"}', '{"priority": 0}', '{"max_current": -1}',
                '{"mode": "turbo"}', '[]', '{"min_current": NaN}']:
        with pytest.raises(ValidationError):
            LoadSettingsSet.model_validate_json(raw)
    with pytest.raises(ValidationError):
        SiteSettingsSet.model_validate_json('{"fuse_limit": 10000}')


def test_load_state_is_consistent() -> None:
    base = {"site": "home", "load": "ev", "kind": "evse", "min_current": 6.0, "max_current": 16.0}
    assert LoadState.model_validate(base).site_phases() == ["A", "B", "C"]
    with pytest.raises(ValidationError, match="below min_current"):
        LoadState.model_validate({**base, "min_current": 20.0})
    with pytest.raises(ValidationError, match="not wired"):
        LoadState.model_validate({**base, "legs": {"L1": "B"}, "phases_in_use": ["L1", "L2"]})
    with pytest.raises(ValidationError, match="on/off load needs"):
        LoadState.model_validate({**base, "kind": LoadKind.ONOFF, "max_current": 0.0, "min_current": 0.0})
    mapped = LoadState.model_validate({**base, "legs": {"L1": "C"}, "phases_in_use": ["L1"]})
    assert mapped.site_phases() == ["C"]


def test_site_settings_cross_checks() -> None:
    with pytest.raises(ValidationError, match="unknown parent"):
        SiteSettings.model_validate({"site": "home", "circuits": [{"id": "garage", "limit": 20.0, "parent": "x"}]})
    with pytest.raises(ValidationError, match="target_soc"):
        SiteSettings.model_validate({"site": "home", "battery": {"min_soc": 50.0, "target_soc": 20.0}})
    with pytest.raises(ValidationError):
        SiteSettings.model_validate({"site": "home", "phases": ["A", "A"]})


def test_single_field_commands_take_bare_or_json_values() -> None:
    assert LoadSettingsSet.from_field("mode", b"solar_only").mode is Mode.SOLAR_ONLY
    assert LoadSettingsSet.from_field("max_current", b"16").max_current == 16.0
    assert LoadSettingsSet.from_field("mode", b"null").mode is None
    assert LoadSettingsSet.from_field("enabled", b"false").enabled is False
    with pytest.raises(ValueError, match="not a field"):
        LoadSettingsSet.from_field("colour", b"red")
    for field, raw in [("max_current", b"NaN"), ("max_current", b"sixteen"), ("priority", b"0"), ("mode", b"turbo")]:
        with pytest.raises(ValidationError):
            LoadSettingsSet.from_field(field, raw)
