"""Charging profiles as the simulated charge point keeps them: the composite limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.site_simulator.profiles import ProfileError, ProfileStore, from_v16, from_v201

NOW = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


def v16(pid: int, level: int, limit: float, *, duration: float | None = None, purpose: str = "TxDefaultProfile",
        unit: str = "A", kind: str = "Relative", **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"charging_rate_unit": unit,
                                "charging_schedule_period": [{"start_period": 0, "limit": limit}]}
    if duration is not None:
        schedule["duration"] = duration
    schedule.update(extra.pop("schedule", {}))
    return {"charging_profile_id": pid, "stack_level": level, "charging_profile_purpose": purpose,
            "charging_profile_kind": kind, "charging_schedule": schedule, **extra}


def store_with(*profiles: dict[str, Any], connector: int = 1, at: datetime = NOW) -> ProfileStore:
    store = ProfileStore(rating=16.0)
    for raw in profiles:
        store.install(from_v16(connector, raw, at))
    return store


def test_no_profile_means_the_charger_offers_its_rating() -> None:
    assert ProfileStore(rating=16.0).limit(1, NOW) == 16.0


def test_live_profile_above_the_baseline_wins_until_its_duration_ends() -> None:
    store = store_with(v16(10, 1, 6.0), v16(11, 2, 13.0, duration=90))
    assert store.limit(1, NOW + timedelta(seconds=30), transaction_id="1", transaction_start=NOW) == 13.0
    # expired: back to the baseline
    assert store.limit(1, NOW + timedelta(seconds=95), transaction_id="1", transaction_start=NOW) == 6.0


def test_a_relative_schedule_counts_from_the_start_of_the_transaction() -> None:
    """OCPP leaves a Relative schedule's start to the charger, "e.g. the start of the session", and the
    common stacks count from the transaction's start: a 90 s Relative profile sent 10 min into a session
    has run out before it arrives."""
    started = NOW - timedelta(minutes=10)
    store = store_with(v16(10, 1, 6.0), v16(11, 2, 0.0, duration=90))
    assert store.limit(1, NOW + timedelta(seconds=5), transaction_id="1", transaction_start=started) == 6.0
    # the same profile with the session's 600 s added to its duration holds for 90 s from now
    store.install(from_v16(1, v16(11, 2, 0.0, duration=690), NOW))
    assert store.limit(1, NOW + timedelta(seconds=80), transaction_id="1", transaction_start=started) == 0.0
    assert store.limit(1, NOW + timedelta(seconds=95), transaction_id="1", transaction_start=started) == 6.0
    # with no transaction a Relative schedule starts "now": its first period holds, its duration does not run
    assert store.limit(1, NOW + timedelta(hours=5)) == 0.0


def test_a_charger_that_counts_relative_from_receipt() -> None:
    store = ProfileStore(rating=16.0, relative_from="receipt")
    store.install(from_v16(1, v16(10, 1, 6.0), NOW))
    store.install(from_v16(1, v16(11, 2, 0.0, duration=90), NOW))
    started = NOW - timedelta(minutes=10)
    assert store.limit(1, NOW + timedelta(seconds=80), transaction_id="1", transaction_start=started) == 0.0
    assert store.limit(1, NOW + timedelta(seconds=95), transaction_id="1", transaction_start=started) == 6.0


def test_absolute_schedule_started_in_the_past_binds_now_and_lapses_at_valid_to() -> None:
    start = NOW - timedelta(minutes=15)
    raw = v16(11, 2, 0.0, kind="Absolute", duration=900 + 90, valid_to=(NOW + timedelta(seconds=90)).isoformat(),
              schedule={"start_schedule": start.isoformat()})
    store = store_with(v16(10, 1, 6.0), raw)
    for tx_start in (None, NOW - timedelta(minutes=10)):
        tx = None if tx_start is None else "1"
        assert store.limit(1, NOW, transaction_id=tx, transaction_start=tx_start) == 0.0
        assert store.limit(1, NOW + timedelta(seconds=91), transaction_id=tx, transaction_start=tx_start) == 6.0


def test_a_renewed_live_profile_replaces_the_old_one() -> None:
    store = store_with(v16(10, 1, 6.0), v16(11, 2, 13.0, duration=90))
    store.install(from_v16(1, v16(11, 2, 8.0, duration=200), NOW + timedelta(seconds=60)))
    assert store.limit(1, NOW + timedelta(seconds=120), transaction_id="1", transaction_start=NOW) == 8.0
    assert len(store.profiles) == 2


def test_tx_profile_rules_over_the_default_for_its_transaction_only() -> None:
    store = store_with(v16(10, 1, 6.0), v16(11, 2, 13.0), v16(12, 1, 9.0, purpose="TxProfile", transaction_id=7))
    assert store.limit(1, NOW, transaction_id="7", transaction_start=NOW) == 9.0
    assert store.limit(1, NOW, transaction_id="8", transaction_start=NOW) == 13.0


def test_a_relative_max_profile_is_refused() -> None:
    with pytest.raises(ProfileError):
        store_with(v16(1, 0, 10.0, purpose="ChargePointMaxProfile"), connector=0)


def test_v16_same_purpose_and_stack_level_replaces_across_connectors_v201_per_evse() -> None:
    """1.6: a profile with the same purpose and stack level replaces the one "on the Charge Point"."""
    store = ProfileStore(rating=16.0)
    store.install(from_v16(1, v16(11, 2, 8.0), NOW))
    store.install(from_v16(2, v16(21, 2, 10.0), NOW))
    assert set(store.profiles) == {21}
    per_evse = ProfileStore(rating=16.0, per_evse=True)
    per_evse.install(from_v16(1, v16(11, 2, 8.0), NOW))
    per_evse.install(from_v16(2, v16(21, 2, 10.0), NOW))
    assert set(per_evse.profiles) == {11, 21}


def test_max_profile_caps_the_default_and_the_rating_caps_everything() -> None:
    store = store_with(v16(11, 2, 32.0), v16(5, 0, 10.0, purpose="ChargePointMaxProfile", kind="Absolute",
                                             schedule={"start_schedule": NOW.isoformat()}), connector=0)
    assert store.limit(1, NOW) == 10.0
    assert store_with(v16(11, 2, 32.0)).limit(1, NOW) == 16.0


def test_watts_become_amps_with_the_phases_of_the_schedule() -> None:
    raw = v16(11, 2, 4140.0, unit="W", schedule={"charging_schedule_period": [
        {"start_period": 0, "limit": 4140.0, "number_phases": 3}]})
    assert store_with(raw).limit(1, NOW) == pytest.approx(6.0)


def test_schedule_periods_step_through_time() -> None:
    raw = v16(11, 2, 0.0, schedule={"charging_schedule_period": [
        {"start_period": 0, "limit": 16.0}, {"start_period": 60, "limit": 6.0}]})
    store = store_with(raw)
    assert store.limit(1, NOW + timedelta(seconds=10), transaction_id="1", transaction_start=NOW) == 16.0
    assert store.limit(1, NOW + timedelta(seconds=70), transaction_id="1", transaction_start=NOW) == 6.0


def test_absolute_profile_respects_valid_from_and_valid_to() -> None:
    start = NOW + timedelta(seconds=30)
    raw = v16(11, 2, 10.0, kind="Absolute", valid_from=start.isoformat(),
              valid_to=(start + timedelta(seconds=60)).isoformat(), schedule={"start_schedule": start.isoformat()})
    store = store_with(v16(10, 1, 6.0), raw)
    assert store.limit(1, NOW) == 6.0
    assert store.limit(1, NOW + timedelta(seconds=45)) == 10.0
    assert store.limit(1, NOW + timedelta(seconds=100)) == 6.0


def test_clear_by_id_and_by_criteria() -> None:
    store = store_with(v16(10, 1, 6.0), v16(11, 2, 13.0))
    assert not store.clear(profile_id=11, connector=2)  # every criterion given must match
    assert store.clear(profile_id=11, connector=1, purpose="TxDefaultProfile", stack_level=2)
    assert store.limit(1, NOW) == 6.0
    assert not store.clear(profile_id=99)
    assert store.clear(purpose="TxDefaultProfile")
    assert store.limit(1, NOW) == 16.0


def test_v201_profile_with_a_schedule_list() -> None:
    raw = {"id": 11, "stack_level": 2, "charging_profile_purpose": "TxDefaultProfile",
           "charging_profile_kind": "Relative", "charging_schedule": [
               {"id": 11, "charging_rate_unit": "A", "duration": 90,
                "charging_schedule_period": [{"start_period": 0, "limit": 7.5, "number_phases": 1}]}]}
    store = ProfileStore(rating=32.0)
    store.install(from_v201(1, raw, NOW))
    assert store.limit(1, NOW + timedelta(seconds=10)) == 7.5


@pytest.mark.parametrize("bad", [
    {"charging_schedule": {"charging_rate_unit": "kW", "charging_schedule_period": [{"start_period": 0, "limit": 1}]}},
    {"charging_schedule": {"charging_rate_unit": "A", "charging_schedule_period": []}},
    {"charging_profile_purpose": "Nonsense"},
])
def test_malformed_profiles_are_refused(bad: dict[str, Any]) -> None:
    raw = {**v16(11, 2, 10.0), **bad}
    with pytest.raises(ProfileError):
        from_v16(1, raw, NOW)
