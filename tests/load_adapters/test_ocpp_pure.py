"""The charger adapter's pure parts: profile builder (checked against the OCPP JSON schemas), status table,
phase detection, clamping, unit detection and the compliance watchdog."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import pytest

from services.load_adapters.ocpp_charger import OcppChargerConfig
from services.load_adapters.ocpp_profiles import (
    ProfileSpec,
    Purpose,
    RateUnit,
    Validity,
    clear_charging_profile,
    rate_unit_from,
    rate_unit_request,
    renewal_interval,
    reset,
    set_charging_profile,
)
from services.load_adapters.ocpp_status import (
    Activity,
    ComplianceWatchdog,
    activity,
    clamp_legs,
    legs_drawing,
    load_status,
)
from services.load_adapters.service import LoadAdaptersConfig
from shared.models import Leg, LoadStatus, OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201
NOW = datetime(2026, 12, 1, 12, 0, 0, 400_000, tzinfo=UTC)
SCHEMAS = Path(ocpp.__file__).parent


def schema_check(version: OcppVersion, action: str, payload: dict[str, Any]) -> None:
    name = f"v16/schemas/{action}.json" if version is V16 else f"v201/schemas/{action}Request.json"
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.validate(payload, schema)


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("validity", list(Validity))
@pytest.mark.parametrize("unit", list(RateUnit))
@pytest.mark.parametrize(("lifetime", "then"), [(None, None), (90.0, None), (90.0, 6.0)])
def test_every_profile_variant_is_valid_ocpp(version: OcppVersion, validity: Validity, unit: RateUnit,
                                             lifetime: float | None, then: float | None) -> None:
    spec = ProfileSpec(version, 1, 11, 2, 13.37, 3, unit=unit, lifetime=lifetime, validity=validity,
                       then_current=then)
    schema_check(version, "SetChargingProfile", set_charging_profile(spec, NOW))


@pytest.mark.parametrize("version", [V16, V201])
def test_other_requests_are_valid_ocpp(version: OcppVersion) -> None:
    schema_check(version, "ClearChargingProfile", clear_charging_profile(version, 11, 1, 2))
    schema_check(version, "Reset", reset(version))
    action, payload = rate_unit_request(version)
    schema_check(version, action, payload)
    max_spec = ProfileSpec(version, 0, 110, 0, 20.0, 3, purpose=Purpose.MAX)
    schema_check(version, "SetChargingProfile", set_charging_profile(max_spec, NOW))


def test_watts_are_amps_times_volts_times_phases() -> None:
    spec = ProfileSpec(V16, 1, 11, 2, 10.0, 2, unit=RateUnit.WATTS, voltage=230.0, lifetime=60.0)
    schedule = set_charging_profile(spec, NOW)["csChargingProfiles"]["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 4600.0, "numberPhases": 2}]
    assert schedule["chargingRateUnit"] == "W"


def test_absolute_live_profile_starts_in_the_past_and_lapses_at_the_end_of_its_lifetime() -> None:
    profile = set_charging_profile(ProfileSpec(V16, 1, 11, 2, 8.04, 3, lifetime=90.0, validity=Validity.ABSOLUTE),
                                   NOW)["csChargingProfiles"]
    assert profile["chargingProfileKind"] == "Absolute"
    assert "validFrom" not in profile
    assert profile["validTo"] == "2026-12-01T12:01:30Z"
    assert profile["chargingSchedule"]["startSchedule"] == "2026-12-01T11:45:00Z"  # LIVE_BACKDATE before now
    assert profile["chargingSchedule"]["duration"] == 900 + 90  # to the same end as validTo
    assert profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 8.0


def test_absolute_times_are_written_in_the_chargers_clock() -> None:
    """A charger whose clock is 10 min ahead gets every time 10 min later."""
    profile = set_charging_profile(ProfileSpec(V16, 1, 11, 2, 0.0, 3, lifetime=90.0, skew=600.4),
                                   NOW)["csChargingProfiles"]
    assert profile["validTo"] == "2026-12-01T12:11:30Z"
    assert profile["chargingSchedule"]["startSchedule"] == "2026-12-01T11:55:00Z"
    baseline = set_charging_profile(ProfileSpec(V201, 1, 10, 1, 6.0, 3, skew=-600.0), NOW)["chargingProfile"]
    assert baseline["chargingSchedule"][0]["startSchedule"] == "2026-11-30T11:50:00Z"  # a day before its now
    assert "validTo" not in baseline and "duration" not in baseline["chargingSchedule"][0]


def test_relative_live_profile_adds_the_time_the_transaction_has_run() -> None:
    """A charger that counts a Relative schedule from the transaction's start, 10 min into it."""
    profile = set_charging_profile(ProfileSpec(V16, 1, 11, 2, 0.0, 3, lifetime=90.0, validity=Validity.RELATIVE,
                                               elapsed=600.0), NOW)["csChargingProfiles"]
    assert profile["chargingProfileKind"] == "Relative"
    assert profile["chargingSchedule"]["duration"] == 690
    assert "startSchedule" not in profile["chargingSchedule"] and "validTo" not in profile
    stack0 = set_charging_profile(ProfileSpec(V16, 1, 11, 0, 0.0, 3, lifetime=90.0, validity=Validity.RELATIVE,
                                              elapsed=600.0, then_current=6.0), NOW)["csChargingProfiles"]
    assert stack0["chargingSchedule"]["chargingSchedulePeriod"][1] == {"startPeriod": 690, "limit": 6.0,
                                                                        "numberPhases": 3}


@pytest.mark.parametrize("version", [V16, V201])
def test_a_max_profile_is_never_relative(version: OcppVersion) -> None:
    payload = set_charging_profile(ProfileSpec(version, 0, 1, 0, 20.0, 3, purpose=Purpose.MAX,
                                               validity=Validity.RELATIVE), NOW)
    profile = payload["csChargingProfiles"] if version is V16 else payload["chargingProfile"]
    assert profile["chargingProfileKind"] == "Absolute"


def test_ids_and_purpose_per_version() -> None:
    v201 = set_charging_profile(ProfileSpec(V201, 2, 10, 1, 6.0, 1), NOW)
    assert v201["evseId"] == 2
    assert v201["chargingProfile"]["id"] == 10
    assert v201["chargingProfile"]["chargingSchedule"][0]["id"] == 10
    station = set_charging_profile(ProfileSpec(V201, 0, 110, 0, 32.0, 3, purpose=Purpose.MAX), NOW)
    assert station["chargingProfile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    assert clear_charging_profile(V201, 21, 2, 4) == {"chargingProfileId": 21, "chargingProfileCriteria": {
        "evseId": 2, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 4}}
    assert clear_charging_profile(V16, 21, 2, 4) == {"id": 21, "connectorId": 2,
                                                     "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 4}


@pytest.mark.parametrize(("version", "response", "unit"), [
    (V16, {"configurationKey": [{"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True,
                                 "value": "Current,Power"}]}, RateUnit.AMPS),
    (V16, {"configurationKey": [{"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True,
                                 "value": "Power"}]}, RateUnit.WATTS),
    (V16, {"configurationKey": [], "unknownKey": ["ChargingScheduleAllowedChargingRateUnit"]}, None),
    (V201, {"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "W"}]}, RateUnit.WATTS),
    (V201, {"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "A,W"}]}, RateUnit.AMPS),
    (V201, {"getVariableResult": [{"attributeStatus": "UnknownVariable"}]}, None),
])
def test_rate_unit_detection(version: OcppVersion, response: dict[str, Any], unit: RateUnit | None) -> None:
    assert rate_unit_from(version, response) is unit


@pytest.mark.parametrize(("version", "status", "state", "expected"), [
    (V16, "Available", None, Activity.IDLE),
    (V16, "Preparing", None, Activity.ACTIVE),
    (V16, "Charging", None, Activity.ACTIVE),
    (V16, "SuspendedEVSE", None, Activity.ACTIVE),
    (V16, "SuspendedEV", None, Activity.SUSPENDED_EV),
    (V16, "Finishing", None, Activity.FINISHING),
    (V16, "Reserved", None, Activity.IDLE),
    (V16, "Unavailable", None, Activity.UNAVAILABLE),
    (V16, "Faulted", None, Activity.FAULTED),
    (V16, "Exploded", None, Activity.FAULTED),
    (V201, "Available", None, Activity.IDLE),
    (V201, "Occupied", None, Activity.ACTIVE),
    (V201, "Occupied", "EVConnected", Activity.ACTIVE),
    (V201, "Occupied", "Charging", Activity.ACTIVE),
    (V201, "Occupied", "SuspendedEVSE", Activity.ACTIVE),
    (V201, "Occupied", "SuspendedEV", Activity.SUSPENDED_EV),
    (V201, "Occupied", "Idle", Activity.IDLE),
    (V201, "Unavailable", None, Activity.UNAVAILABLE),
    (V201, "Faulted", "Charging", Activity.FAULTED),
])
def test_status_table(version: OcppVersion, status: str, state: str | None, expected: Activity) -> None:
    assert activity(version, status, state) is expected


def test_suspended_ev_turns_idle_after_idle_after() -> None:
    assert load_status(Activity.SUSPENDED_EV, 59.0, 60.0) is LoadStatus.ACTIVE
    assert load_status(Activity.SUSPENDED_EV, 60.0, 60.0) is LoadStatus.IDLE
    assert load_status(Activity.ACTIVE, 600.0, 60.0) is LoadStatus.ACTIVE
    assert load_status(Activity.FINISHING, 0.0, 60.0) is LoadStatus.FINISHING


def test_phase_detection() -> None:
    wired = [Leg.L1, Leg.L2, Leg.L3]
    assert legs_drawing({Leg.L1: 15.8, Leg.L2: 0.3, Leg.L3: 0.2}, wired) == [Leg.L1]
    assert legs_drawing({Leg.L1: 10.0, Leg.L2: 9.8, Leg.L3: 0.1}, wired) == [Leg.L1, Leg.L2]
    assert legs_drawing({Leg.L1: 6.1, Leg.L2: 6.0, Leg.L3: 5.9}, wired) == wired
    assert legs_drawing({Leg.L1: 0.2, Leg.L2: 0.1, Leg.L3: 0.0}, wired) is None  # too little to tell
    assert legs_drawing({Leg.L2: 8.0}, [Leg.L1]) is None  # only wired legs count


def test_clamp_holds_each_leg_to_the_maximum() -> None:
    assert clamp_legs({Leg.L1: 48.0, Leg.L2: -1.0, Leg.L3: 15.9}, 16.0) == {Leg.L1: 16.0, Leg.L2: 0.0, Leg.L3: 15.9}


def test_watchdog_counts_consecutive_disagreements() -> None:
    dog = ComplianceWatchdog(cycles=3, tolerance=1.0)
    assert not dog.observe(8.0, offered=8.0, drawn=7.9)
    assert not dog.observe(8.0, offered=16.0, drawn=None)
    assert not dog.observe(8.0, offered=8.5, drawn=8.9)  # within tolerance: the count starts over
    assert [dog.observe(8.0, offered=None, drawn=12.0) for _ in range(3)] == [False, False, True]
    assert dog.failures == 1
    assert [dog.observe(0.0, offered=16.0, drawn=0.0) for _ in range(3)] == [False, False, True]
    assert dog.failures == 2
    dog.observe(0.0, offered=0.0, drawn=0.0)
    assert dog.failures == 0


def test_a_fleet_renews_its_profiles_spread_over_the_last_fifth_of_renew_every() -> None:
    intervals = [renewal_interval(30.0, f"site-{n // 2}/cp-{n}") for n in range(1000)]
    assert all(24.0 <= i <= 30.0 for i in intervals)
    assert max(intervals) - min(intervals) > 5.0  # spread over the window, not in step
    counts = [sum(1 for i in intervals if 24.0 + k * 1.2 <= i < 24.0 + (k + 1) * 1.2) for k in range(5)]
    assert min(counts) > 120  # about evenly: 200 per 1.2 s
    assert renewal_interval(30.0, "home/carport") == renewal_interval(30.0, "home/carport")  # stable per load


def charger(load: str, connector: int, **extra: Any) -> dict[str, Any]:
    return {"type": "ocpp_charger", "site": "home", "id": load, "charger": "cp-m", "connector": connector, **extra}


def test_profile_ids_and_stack_levels_default_per_connector() -> None:
    config = LoadAdaptersConfig.model_validate({"loads": [charger("left", 1), charger("right", 2)]})
    left, right = config.loads
    assert isinstance(left, OcppChargerConfig) and isinstance(right, OcppChargerConfig)
    for load, expected in ((left, (10, 11, 1, 2)), (right, (20, 21, 3, 4))):
        assert (load.baseline_profile_id, load.profile_id, load.baseline_stack_level, load.stack_level) == expected


@pytest.mark.parametrize(("left", "right", "clash"), [
    ({}, {"profile_id": 11, "baseline_profile_id": 12}, "profile id 11"),
    ({}, {"stack_level": 2, "baseline_stack_level": 1}, "TxDefaultProfile stack level 2"),
    ({"stack_level_zero_only": True}, {"stack_level_zero_only": True}, "TxDefaultProfile stack level 0"),
    ({"charger_max_current": 32.0}, {"charger_max_current": 32.0}, "profile id 1"),
])
def test_loads_of_one_charger_that_would_overwrite_each_others_profiles_are_refused(
        left: dict[str, Any], right: dict[str, Any], clash: str) -> None:
    with pytest.raises(ValueError, match=clash):
        LoadAdaptersConfig.model_validate({"loads": [charger("left", 1, **left), charger("right", 2, **right)]})
    # on two chargers the same numbers are fine
    other = {**charger("right", 2, **right), "charger": "cp-n"}
    LoadAdaptersConfig.model_validate({"loads": [charger("left", 1, **left), other]})
