"""The charging session's figures from the gateway's messages and the site's measurement, step by step (the
adapter against a real charge point is in test_ocpp_charger.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.load_adapters.charging_session import SessionTracker, solar_power_to_load
from shared.models import ConnectorMeter, SiteMeasurement, TransactionState

T0 = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def measurement(seconds: float, grid: float, solar: float, battery: float | None = None) -> SiteMeasurement:
    data = {"ts": at(seconds), "site": "home", "grid_power": {"ts": at(seconds), "value": grid},
            "solar_power": {"ts": at(seconds), "value": solar}}
    if battery is not None:
        data["battery_power"] = {"ts": at(seconds), "value": battery}
    return SiteMeasurement.model_validate(data)


def tx(seconds: float, state: str, **extra: object) -> TransactionState:
    return TransactionState.model_validate({"ts": at(seconds), "site": "home", "charger": "cp", "connector": 1,
                                            "transaction_id": "7", "state": state, **extra})


def meter(seconds: float, energy: float) -> ConnectorMeter:
    return ConnectorMeter(ts=at(seconds), site="home", charger="cp", connector=1, energy_wh=energy)


def test_solar_covers_the_load_after_the_rest_of_the_site() -> None:
    assert solar_power_to_load(measurement(0, grid=-1000.0, solar=5000.0), 3000.0) == 3000.0  # exporting
    assert solar_power_to_load(measurement(0, grid=1000.0, solar=5000.0), 3000.0) == 2000.0  # import is not solar
    assert solar_power_to_load(measurement(0, grid=0.0, solar=5000.0, battery=1000.0), 3000.0) == 2000.0
    assert solar_power_to_load(measurement(0, grid=0.0, solar=1000.0), 3000.0) == 1000.0  # only what it makes
    assert solar_power_to_load(measurement(0, grid=4000.0, solar=500.0), 3000.0) == 0.0


def test_the_solar_share_is_weighted_by_energy_over_time() -> None:
    """10 min at 3 kW all solar, then 10 min at 6 kW half solar: 1 of the 1.5 kWh came from solar (66.7 %)."""
    tracker = SessionTracker("home", "ev", "cp", 1)
    tracker.transaction(tx(0, "started", id_tag="TAG", meter_start_wh=0.0))
    tracker.site_measurement(measurement(0, grid=-500.0, solar=3500.0).model_dump_json().encode())
    tracker.meter(meter(0, 0.0), load_power=3000.0, peak_current=4.3)
    tracker.site_measurement(measurement(600, grid=3000.0, solar=3000.0).model_dump_json().encode())
    tracker.meter(meter(600, 500.0), load_power=6000.0, peak_current=8.7)
    tracker.meter(meter(1200, 1500.0), load_power=6000.0, peak_current=8.7)
    assert tracker.take_finished() == []
    tracker.transaction(tx(1200, "ended", meter_stop_wh=1500.0, reason="Local"))
    [summary] = tracker.take_finished()
    assert summary.solar_share == 66.7 and summary.solar_energy_wh == 1000.0 and summary.energy_wh == 1500.0
    assert summary.duration == 1200.0 and summary.peak_current == 8.7 and summary.id_tag == "TAG"
    assert tracker.take_finished() == []  # each once


def test_a_stale_measurement_says_nothing_about_solar() -> None:
    tracker = SessionTracker("home", "ev", "cp", 1)
    tracker.transaction(tx(0, "started", meter_start_wh=0.0))
    tracker.site_measurement(measurement(-3600, grid=-500.0, solar=9000.0).model_dump_json().encode())
    tracker.meter(meter(0, 0.0), load_power=3000.0)
    tracker.meter(meter(60, 50.0), load_power=3000.0)
    tracker.transaction(tx(60, "ended", meter_stop_wh=50.0))
    [summary] = tracker.take_finished()
    assert summary.solar_share is None and summary.energy_wh == 50.0


def test_an_end_the_adapter_did_not_see_running_is_not_a_session() -> None:
    """After a restart the gateway's retained ``ended`` comes first: no session is reported again."""
    tracker = SessionTracker("home", "ev", "cp", 1)
    tracker.transaction(tx(0, "ended", meter_stop_wh=900.0))
    tracker.status("Available", at(1))
    assert tracker.take_finished() == []


def test_a_stop_transaction_after_the_unplugged_status_corrects_the_waiting_summary() -> None:
    tracker = SessionTracker("home", "ev", "cp", 1)
    tracker.transaction(tx(0, "started", meter_start_wh=100.0))
    tracker.meter(meter(30, 400.0))
    tracker.status("Available", at(40))
    tracker.transaction(tx(41, "ended", meter_stop_wh=420.0, reason="EVDisconnected"))
    [summary] = tracker.take_finished()
    assert summary.energy_wh == 320.0 and summary.reason == "EVDisconnected"
