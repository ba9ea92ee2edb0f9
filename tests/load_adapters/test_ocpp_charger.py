"""The OCPP charger adapter against the real gateway, real Mosquitto and real OCPP charge points (1.6J, 2.0.1),
checking the exact profiles the charger receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.load_adapters.ocpp_profiles import LIVE_BACKDATE, PERMANENT_BACKDATE
from shared.models import LoadState, Phase
from shared.probe import Probe

from .chargers import charge_point
from .conftest import FAST_CHARGER, T, ocpp_gateway, running, setpoint

ALL = [Phase.A, Phase.B, Phase.C]


def charger_load(site: str, **extra: Any) -> dict[str, Any]:
    return {"type": "ocpp_charger", "site": site, "id": "carport", "charger": "cp-a", **FAST_CHARGER, **extra}


@contextlib.asynccontextmanager
async def with_charger(mqtt_url: str, site_id: str, loads: list[dict[str, Any]], station: str = "CP-A",
                       **options: Any) -> AsyncIterator[Any]:
    """The gateway serving ``station``, the adapters running ``loads`` and the charge point connected to it."""
    async with (
        ocpp_gateway(mqtt_url, site_id, [station]) as gw,
        running(mqtt_url, loads),
        charge_point(gw.url, station, **options) as cp,
    ):
        yield cp


def times(profile: dict[str, Any]) -> dict[str, Any]:
    """``profile`` (1.6 csChargingProfiles or 2.0.1 chargingProfile) with its date-times checked and taken out:
    startSchedule in the past (a live profile's by LIVE_BACKDATE, a permanent one's by a day), and a live
    profile's validTo ``duration`` after startSchedule, less than a minute after now."""
    profile = json.loads(json.dumps(profile))
    schedules = profile["chargingSchedule"]
    schedule = schedules[0] if isinstance(schedules, list) else schedules
    assert profile["chargingProfileKind"] == "Absolute"
    start = datetime.fromisoformat(schedule.pop("startSchedule"))
    now = datetime.now(UTC)
    if "validTo" in profile or len(schedule["chargingSchedulePeriod"]) > 1:  # a live profile
        if "validTo" in profile:
            valid_to = datetime.fromisoformat(profile.pop("validTo"))
            assert (valid_to - start).total_seconds() == schedule["duration"]
        assert now - timedelta(seconds=LIVE_BACKDATE + 5) < start < now - timedelta(seconds=LIVE_BACKDATE - 5)
    else:
        assert now - timedelta(seconds=PERMANENT_BACKDATE + 5) < start < now - timedelta(seconds=PERMANENT_BACKDATE - 5)
    return profile


def live16(payload: dict[str, Any]) -> bool:
    return bool(payload["csChargingProfiles"]["chargingProfileId"] == 11)


def limit16(payload: dict[str, Any]) -> float:
    return float(payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])


async def test_v16_baseline_on_connect_then_live_renewal_and_pause(mqtt_url: str, probe: Probe, site_id: str) -> None:
    async with with_charger(mqtt_url, site_id, [charger_load(site_id)]) as cp:
        await cp.boot()
        await cp.status("Available")
        assert await cp.wait_call("GetConfiguration") == {"key": ["ChargingScheduleAllowedChargingRateUnit"]}
        baseline = await cp.wait_call("SetChargingProfile")
        assert baseline["connectorId"] == 1
        assert times(baseline["csChargingProfiles"]) == {
            "chargingProfileId": 10, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {
                "chargingRateUnit": "A", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 6.0, "numberPhases": 3}]}}

        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=10.0, phases=ALL))
        live = await cp.wait_call("SetChargingProfile", where=live16)
        assert live["connectorId"] == 1
        assert times(live["csChargingProfiles"]) == {
            "chargingProfileId": 11, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {
                "chargingRateUnit": "A", "duration": LIVE_BACKDATE + 3, "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 10.0, "numberPhases": 3}]}}

        # nobody publishes anything new: the adapter renews the live profile before its lifetime ends
        mark = cp.mark()
        renewed = await cp.wait_call("SetChargingProfile", where=live16, after=mark)
        assert times(renewed["csChargingProfiles"]) == times(live["csChargingProfiles"])

        # a pause is 0 A, never a stopped transaction
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=0.0, phases=ALL))
        await cp.wait_call("SetChargingProfile", where=lambda p: live16(p) and limit16(p) == 0.0)
        # below the car's minimum (6 A) is a pause too
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=4.0, phases=ALL))
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=40.0, phases=ALL))
        await cp.wait_call("SetChargingProfile", where=lambda p: live16(p) and limit16(p) == 16.0)
        assert all(limit16(p) in (10.0, 0.0, 16.0) for p in cp.of("SetChargingProfile") if live16(p))
        assert not cp.of("RemoteStopTransaction")
        assert len([p for p in cp.of("SetChargingProfile") if not live16(p)]) == 1  # one baseline


async def test_live_profile_is_sent_only_on_change(mqtt_url: str, probe: Probe, site_id: str) -> None:
    load = charger_load(site_id, lifetime=90.0, renew_every=30.0, rate_unit="A")
    async with with_charger(mqtt_url, site_id, [load]) as cp:
        await cp.boot()
        await cp.wait_call("SetChargingProfile")
        for _ in range(5):
            await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=8.0))
        await cp.wait_call("SetChargingProfile", where=live16)
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=9.0))
        await cp.wait_call("SetChargingProfile", where=lambda p: live16(p) and limit16(p) == 9.0)
        assert [limit16(p) for p in cp.of("SetChargingProfile") if live16(p)] == [8.0, 9.0]
        assert not cp.of("GetConfiguration")  # the unit is configured: nothing asked


async def test_watts_only_charger_gets_watts_for_the_phases_in_use(mqtt_url: str, probe: Probe, site_id: str) -> None:
    async with with_charger(mqtt_url, site_id, [charger_load(site_id)], rate_unit="Power") as cp:
        await cp.boot()
        baseline = await cp.wait_call("SetChargingProfile")
        schedule = baseline["csChargingProfiles"]["chargingSchedule"]
        assert schedule["chargingRateUnit"] == "W"
        assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 4140.0, "numberPhases": 3}]
        # a 1-phase car: the adapter sees it from the per-leg draw, and W follows the phases in use
        await cp.status("Charging")
        await cp.meter(legs={"L1": 7.5, "L2": 0.1, "L3": 0.0})
        await probe.subscribe(T.load_state(site_id, "carport"))
        state = await probe.expect(T.load_state(site_id, "carport"),
                                   where=lambda m: m.json()["phases_in_use"] == ["L1"])
        assert state.model(LoadState).draw == {Phase.A: 7.5, Phase.B: 0.1, Phase.C: 0.0}
        assert state.model(LoadState).fallback_current == 6.0  # its baseline: reserved while it is offline
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=10.0))
        live = await cp.wait_call("SetChargingProfile", where=live16)
        assert live["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 2300.0, "numberPhases": 1}]


async def test_absolute_validity_and_clear_on_expiry(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(T.errors(site_id))
    load = charger_load(site_id, validity="absolute", lifetime=60.0, renew_every=20.0)
    async with with_charger(mqtt_url, site_id, [load]) as cp:
        await cp.boot()
        await cp.wait_call("SetChargingProfile")
        await probe.publish(T.setpoint(site_id, "carport"),
                            setpoint(site_id, "carport", current=12.0, seconds=1.5, phases=ALL))
        live = (await cp.wait_call("SetChargingProfile", where=live16))["csChargingProfiles"]
        assert "validFrom" not in live  # valid as soon as the charger takes it, whatever its clock says
        valid_to = datetime.fromisoformat(live["validTo"])
        assert abs((valid_to - datetime.now(UTC)).total_seconds() - 60) < 5
        assert times(live)["chargingSchedule"]["duration"] == LIVE_BACKDATE + 60
        # the allocator goes quiet: the setpoint expires and the live profile is cleared, leaving the baseline;
        # the clear names the connector, purpose and stack level, so it cannot take another connector's profile
        assert await cp.wait_call("ClearChargingProfile") == {
            "id": 11, "connectorId": 1, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 2}
        await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "setpoint_expired")


async def test_stack_level_zero_charger_gets_one_profile_that_falls_back(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    load = charger_load(site_id, stack_level_zero_only=True, rate_unit="A", lifetime=90.0, renew_every=30.0)
    async with with_charger(mqtt_url, site_id, [load]) as cp:
        await cp.boot()
        baseline = (await cp.wait_call("SetChargingProfile"))["csChargingProfiles"]
        assert (baseline["chargingProfileId"], baseline["stackLevel"]) == (11, 0)
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=14.0))
        live = await cp.wait_call("SetChargingProfile", where=lambda p: limit16(p) == 14.0)
        profile = live["csChargingProfiles"]
        assert (profile["chargingProfileId"], profile["stackLevel"]) == (11, 0)
        # Absolute from LIVE_BACKDATE ago: the live limit until the lifetime's end, then the baseline for good
        assert times(profile)["chargingSchedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 14.0, "numberPhases": 3},
            {"startPeriod": LIVE_BACKDATE + 90, "limit": 6.0, "numberPhases": 3}]
        assert "duration" not in profile["chargingSchedule"] and "validTo" not in profile


async def test_v16_status_draw_and_phases(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(T.load_state(site_id, "carport"))
    load = charger_load(site_id, legs={"L1": "B", "L2": "C", "L3": "A"})

    async def state_where(check: Any) -> LoadState:
        msg = await probe.expect(T.load_state(site_id, "carport"), after=mark, where=lambda m: check(m.json()))
        return msg.model(LoadState)

    async with ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gw, running(mqtt_url, [load]):
        async with charge_point(gw.url, "CP-A") as cp:
            mark = probe.mark()
            await cp.boot()
            await cp.status("Available")
            idle = await state_where(lambda s: s["details"]["ocpp_status"] == "Available")
            assert idle.status.value == "idle"
            await cp.status("Preparing")
            assert (await state_where(lambda s: s["details"]["ocpp_status"] == "Preparing")).status.value == "active"
            await cp.status("Charging")
            await cp.meter(legs={"L1": 10.0, "L2": 10.2, "L3": 48.0}, soc=55)  # L3 reports the 3-phase total
            charging = await state_where(lambda s: s["details"]["ocpp_status"] == "Charging" and s["draw"])
            assert charging.draw == {Phase.B: 10.0, Phase.C: 10.2, Phase.A: 16.0}  # L3 clamped to max 16 A
            assert charging.phases_in_use == ["L1", "L2", "L3"]
            assert charging.soc == 55
            # SuspendedEV: active while the car still drew recently, idle once it drew nothing for idle_after
            mark = probe.mark()
            await cp.status("SuspendedEV")
            await cp.meter(legs={"L1": 0.0, "L2": 0.0, "L3": 0.0})
            first = await state_where(lambda s: s["details"]["ocpp_status"] == "SuspendedEV")
            assert first.status.value == "active"
            await state_where(lambda s: s["details"]["ocpp_status"] == "SuspendedEV" and s["status"] == "idle")
            # the full car stays idle when our 0 A makes the charger say SuspendedEVSE (no offer-pause cycling)
            mark = probe.mark()
            await cp.status("SuspendedEVSE")
            held = await state_where(lambda s: s["details"]["ocpp_status"] == "SuspendedEVSE")
            assert held.status.value == "idle"
            # ... until it draws again
            mark = probe.mark()
            await cp.status("Charging")
            await cp.meter(legs={"L1": 8.0, "L2": 8.0, "L3": 8.0})
            await state_where(lambda s: s["details"]["ocpp_status"] == "Charging" and s["status"] == "active")
            mark = probe.mark()
            await cp.status("SuspendedEVSE")
            again = await state_where(lambda s: s["details"]["ocpp_status"] == "SuspendedEVSE")
            assert again.status.value == "active", "a car that wants power and is held by the EVSE is active"
            mark = probe.mark()
            await cp.status("Finishing")
            assert (await state_where(lambda s: s["details"]["ocpp_status"] == "Finishing")).status.value == "finishing"
            await cp.status("Faulted")
            assert (await state_where(lambda s: s["details"]["ocpp_status"] == "Faulted")).status.value == "faulted"
        # the charger is gone: unavailable
        mark = probe.mark()
        await state_where(lambda s: s["status"] == "unavailable")


async def test_v201_profiles_and_status(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(T.load_state(site_id, "carport"))
    load = charger_load(site_id, charger="cp-b")
    async with with_charger(mqtt_url, site_id, [load], "CP-B", version="2.0.1", rate_unit="A") as cp:
        await cp.boot()
        await cp.status("Available")
        assert await cp.wait_call("GetVariables") == {"getVariableData": [
            {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "RateUnit"}}]}
        baseline = await cp.wait_call("SetChargingProfile")
        assert baseline["evseId"] == 1
        assert times(baseline["chargingProfile"]) == {
            "id": 10, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": [{
                "id": 10, "chargingRateUnit": "A", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 6.0, "numberPhases": 3}]}]}
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=11.0, phases=ALL))
        live = await cp.wait_call("SetChargingProfile", where=lambda p: p["chargingProfile"]["id"] == 11)
        assert live["evseId"] == 1
        assert times(live["chargingProfile"]) == {
            "id": 11, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": [{
                "id": 11, "chargingRateUnit": "A", "duration": LIVE_BACKDATE + 3, "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 11.0, "numberPhases": 3}]}]}
        await cp.status("Occupied")
        await cp.transaction("Started", "Charging")
        await cp.meter(legs={"L1": 11.0, "L2": 10.8})
        state = await probe.expect(T.load_state(site_id, "carport"),
                                   where=lambda m: m.json()["details"]["charging_state"] == "Charging"
                                   and m.json()["draw"])
        parsed = state.model(LoadState)
        assert parsed.status.value == "active"
        assert parsed.phases_in_use == ["L1", "L2"]
        await cp.transaction("Updated", "SuspendedEV")
        await cp.meter(legs={"L1": 0.0, "L2": 0.0})
        await probe.expect(T.load_state(site_id, "carport"),
                           where=lambda m: m.json()["details"]["charging_state"] == "SuspendedEV"
                           and m.json()["status"] == "idle")


async def test_compliance_watchdog_clears_resends_then_resets(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(T.errors(site_id))
    load = charger_load(site_id, compliance_cycles=2, reset_after=1, lifetime=90.0, renew_every=30.0)
    async with with_charger(mqtt_url, site_id, [load]) as cp:
        await cp.boot()
        await cp.status("Charging")
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=8.0))
        await cp.wait_call("SetChargingProfile", where=live16)
        await asyncio.sleep(0.3)  # the compliance grace
        # the charger accepted 8 A but keeps offering 16 A and the car draws it
        mark = cp.mark()
        for _ in range(2):
            await cp.meter(legs={"L1": 15.9, "L2": 15.9, "L3": 15.9}, offered=16.0)
        assert (await cp.wait_call("ClearChargingProfile", after=mark))["id"] == 11
        await cp.wait_call("SetChargingProfile", where=live16, after=mark)
        ignored = await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "profile_ignored")
        assert "limit 8 A" in ignored.json()["message"]
        await asyncio.sleep(0.3)
        for _ in range(4):
            await cp.meter(legs={"L1": 15.9, "L2": 15.9, "L3": 15.9}, offered=16.0)
            await asyncio.sleep(0.25)
        assert await cp.wait_call("Reset", after=mark) == {"type": "Soft"}
        await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "charger_reset")
        # the cooldown holds further resets back
        await asyncio.sleep(0.3)
        for _ in range(6):
            await cp.meter(legs={"L1": 15.9, "L2": 15.9, "L3": 15.9}, offered=16.0)
            await asyncio.sleep(0.25)
        assert len(cp.of("Reset")) == 1


async def test_multi_connector_charger(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(T.site_all(site_id))
    loads = [charger_load(site_id, id="left", charger="cp-m", connector=1, circuit="cp-m", charger_max_current=20.0),
             charger_load(site_id, id="right", charger="cp-m", connector=2, circuit="cp-m",
                          baseline_profile_id=20, profile_id=21)]
    async with with_charger(mqtt_url, site_id, loads, "CP-M") as cp:
        await cp.boot()
        await cp.status("Charging", connector=1)
        await cp.status("Available", connector=2)
        await cp.wait_call("SetChargingProfile", where=lambda p: p["connectorId"] == 0)
        station = next(p for p in cp.of("SetChargingProfile") if p["connectorId"] == 0)["csChargingProfiles"]
        assert station["chargingProfilePurpose"] == "ChargePointMaxProfile"
        assert station["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 20.0
        # sequential: one plug charges, the other waits
        left = await probe.expect(T.load_state(site_id, "left"), where=lambda m: m.json()["status"] == "active")
        right = await probe.expect(T.load_state(site_id, "right"), where=lambda m: m.json()["status"] == "idle")
        assert left.json()["circuit"] == right.json()["circuit"] == "cp-m"
        await probe.publish(T.setpoint(site_id, "left"), setpoint(site_id, "left", current=12.0))
        await probe.publish(T.setpoint(site_id, "right"), setpoint(site_id, "right", current=8.0))
        to_left = await cp.wait_call("SetChargingProfile", where=lambda p: p["connectorId"] == 1 and live16(p))
        to_right = await cp.wait_call("SetChargingProfile", where=lambda p: p["connectorId"] == 2
                                      and p["csChargingProfiles"]["chargingProfileId"] == 21)
        assert limit16(to_left) == 12.0
        assert limit16(to_right) == 8.0
        # concurrent: both charge, each with its own draw
        await cp.status("Charging", connector=2)
        await cp.meter(1, legs={"L1": 12.0, "L2": 12.0, "L3": 12.0})
        await cp.meter(2, legs={"L1": 8.0, "L2": 0.0, "L3": 0.0})
        right_now = await probe.expect(T.load_state(site_id, "right"),
                                       where=lambda m: m.json()["status"] == "active" and m.json()["draw"])
        assert right_now.model(LoadState).phases_in_use == ["L1"]
        left_now = await probe.expect(T.load_state(site_id, "left"), where=lambda m: m.json()["draw"])
        assert left_now.model(LoadState).draw == {Phase.A: 12.0, Phase.B: 12.0, Phase.C: 12.0}


async def test_reconnected_charger_gets_its_baseline_again(mqtt_url: str, probe: Probe, site_id: str) -> None:
    async with ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gw, running(mqtt_url, [charger_load(site_id)]):
        async with charge_point(gw.url, "CP-A") as cp:
            await cp.boot()
            await cp.wait_call("SetChargingProfile")
        async with charge_point(gw.url, "CP-A") as cp:
            await cp.boot()
            baseline = await cp.wait_call("SetChargingProfile")
            assert baseline["csChargingProfiles"]["chargingProfileId"] == 10


async def test_rejected_profile_is_reported_and_retried(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(T.errors(site_id))
    await probe.subscribe(T.load_state(site_id, "carport"))
    async with with_charger(mqtt_url, site_id, [charger_load(site_id, rate_unit="A")]) as cp:
        cp.reject_profiles = 2
        await cp.boot()
        # refused twice, then the third baseline gets through
        await probe.expect(T.load_state(site_id, "carport"), where=lambda m: m.json()["details"]["baseline"])
        assert len(cp.of("SetChargingProfile")) == 3
        failures = [m.json() for m in probe.on(T.errors(site_id)) if m.json()["error"] == "command_failed"]
        assert len(failures) == 2
        assert "rejected" in failures[0]["message"]
        assert failures[0]["topic"] == T.charger_command(site_id, "cp-a", "SetChargingProfile")


async def test_gateway_gone_makes_the_charger_unavailable(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(T.load_state(site_id, "carport"))
    async with running(mqtt_url, [charger_load(site_id, rate_unit="A")]):
        async with ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gw, charge_point(gw.url, "CP-A") as cp:
            await cp.boot()
            await cp.status("Charging")
            await probe.expect(T.load_state(site_id, "carport"), where=lambda m: m.json()["status"] == "active")
            mark = probe.mark()
        await probe.expect(T.load_state(site_id, "carport"), after=mark,
                           where=lambda m: m.json()["status"] == "unavailable")


async def test_v201_two_evses_station_limit_and_watts(mqtt_url: str, probe: Probe, site_id: str) -> None:
    loads = [charger_load(site_id, id="left", charger="cp-w", connector=1, circuit="cp-w", charger_max_current=20.0),
             charger_load(site_id, id="right", charger="cp-w", connector=2, circuit="cp-w",
                          baseline_profile_id=20, profile_id=21)]
    async with with_charger(mqtt_url, site_id, loads, "CP-W", version="2.0.1", rate_unit="W") as cp:
        await cp.boot()
        station = await cp.wait_call("SetChargingProfile", where=lambda p: p["evseId"] == 0)
        assert station["chargingProfile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile"
        assert station["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"] == "W"
        assert station["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 13800.0
        await probe.publish(T.setpoint(site_id, "right"), setpoint(site_id, "right", current=8.0, phases=[Phase.A]))
        live = await cp.wait_call("SetChargingProfile", where=lambda p: p["chargingProfile"]["id"] == 21)
        assert live["evseId"] == 2
        assert live["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 1840.0, "numberPhases": 1}]  # 8 A x 230 V on the one phase it may use
        left_base = await cp.wait_call("SetChargingProfile", where=lambda p: p["chargingProfile"]["id"] == 10)
        right_base = await cp.wait_call("SetChargingProfile", where=lambda p: p["chargingProfile"]["id"] == 20)
        assert (left_base["evseId"], right_base["evseId"]) == (1, 2)


async def until(check: Any, what: str, timeout: float = 8.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"not {what} within {timeout} s") from None


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_two_connectors_of_one_charger_keep_their_own_limits(
        mqtt_url: str, probe: Probe, site_id: str, version: str) -> None:
    """Issue 13 finding 8: each connector's profiles have their own ids and stack levels (derived from the
    connector), so a profile sent to one connector replaces nothing on the other, and clearing one
    connector's live profile leaves the other's limit in force."""
    loads = [charger_load(site_id, id="left", charger="cp-m", connector=1, rate_unit="A"),
             charger_load(site_id, id="right", charger="cp-m", connector=2, rate_unit="A")]
    async with with_charger(mqtt_url, site_id, loads, "CP-M", version=version) as cp:

        def limits() -> tuple[float, float]:
            now = datetime.now(UTC)
            return cp.store.limit(1, now), cp.store.limit(2, now)

        await cp.boot()
        await probe.publish(T.setpoint(site_id, "left"), setpoint(site_id, "left", current=12.0, seconds=3.0))
        await probe.publish(T.setpoint(site_id, "right"), setpoint(site_id, "right", current=8.0))
        await until(lambda: limits() == (12.0, 8.0), "12 A on the left and 8 A on the right")
        # a new limit on one connector (and every renewal) replaces nothing on the other
        await probe.publish(T.setpoint(site_id, "right"), setpoint(site_id, "right", current=10.0))
        await until(lambda: limits()[1] == 10.0, "10 A on the right")
        assert limits()[0] == 12.0
        # the left load's setpoint runs out: its live profile is cleared, its baseline rules, the right's stays
        await until(lambda: limits()[0] == 6.0, "the left's baseline", timeout=10.0)
        clear = await cp.wait_call("ClearChargingProfile")
        assert clear.get("connectorId", clear.get("chargingProfileCriteria", {}).get("evseId")) == 1
        await asyncio.sleep(1.5)  # a renewal of the right's profile
        assert limits() == (6.0, 10.0)


async def test_v16_charging_session_start_energy_and_end(mqtt_url: str, probe: Probe, site_id: str) -> None:
    """Issue 17: a Home Assistant user sees the session's start, duration and energy (from StartTransaction's
    meterStart, the register readings, StopTransaction's meterStop)."""
    await probe.subscribe(T.load_state(site_id, "carport"))

    async def details_where(check: Any) -> dict[str, Any]:
        msg = await probe.expect(T.load_state(site_id, "carport"), where=lambda m: check(m.json()["details"]))
        return dict(msg.model(LoadState).details)

    async with with_charger(mqtt_url, site_id, [charger_load(site_id)]) as cp:
        await cp.boot()
        await cp.status("Available")
        before = await details_where(lambda d: d["ocpp_status"] == "Available")
        assert before["session_energy_wh"] is None and before["session_active"] is False
        await cp.status("Charging")
        tx = await cp.start_transaction(meter_start=10_000)
        await cp.meter(legs={"L1": 16.0, "L2": 16.0, "L3": 16.0}, energy_wh=10_750)
        # the status, the transaction and the reading come on three topics, and the baseline profile the adapter
        # installs after the boot may be accepted after any of them (its own news: ``baseline`` turns true):
        # wait for the state that holds all four
        running_ = await details_where(lambda d: d["session_energy_wh"] == 750.0 and d["ocpp_status"] == "Charging"
                                       and d["baseline"] is True)
        mark = probe.mark()
        await asyncio.sleep(1.7)  # ticks every 0.1 s, state_interval 2 s: the session's clock alone is no news
        assert probe.on(T.load_state(site_id, "carport"), after=mark) == []
        assert running_["session_active"] is True
        started = datetime.fromisoformat(running_["session_started"])
        assert started.tzinfo is not None and running_["session_seconds"] >= 0
        await cp.stop_transaction(tx, meter_stop=12_400)
        ended = await details_where(lambda d: d["session_active"] is False and d["session_energy_wh"] is not None)
        assert ended["session_energy_wh"] == 2400.0
        assert ended["session_started"] == running_["session_started"]  # the finished session's figures stay


def site_measurement(site: str, grid_w: float, solar_w: float) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"v": 1, "ts": now, "site": site, "grid_power": {"ts": now, "value": grid_w},
            "solar_power": {"ts": now, "value": solar_w}}


async def test_v16_finished_session_is_an_event_and_the_retained_last_session(
        mqtt_url: str, probe: Probe, site_id: str) -> None:
    """Issue 17: each finished session as an event and retained as the last one — start, end, energy, the
    solar share, peak current and id tag. The car draws 3 × 16 A (11 040 W) while the site imports 2 760 W
    and its solar makes 8 280 W: solar covers 75 % of the car."""
    await probe.subscribe(T.session_event(site_id, "carport"))
    await probe.publish(T.measurement(site_id), site_measurement(site_id, 2760.0, 8280.0), retain=True)
    async with with_charger(mqtt_url, site_id, [charger_load(site_id)]) as cp:
        await cp.boot()
        await cp.status("Charging")
        tx = await cp.start_transaction(meter_start=10_000, id_tag="RFID-42")
        await cp.meter(legs={"L1": 16.0, "L2": 16.0, "L3": 16.0}, energy_wh=10_750)
        await asyncio.sleep(0.3)
        await cp.meter(legs={"L1": 9.0, "L2": 9.0, "L3": 9.0}, energy_wh=11_500)
        await cp.stop_transaction(tx, meter_stop=12_400)
        event = (await probe.expect(T.session_event(site_id, "carport"), timeout=8)).json()
    assert event["transaction_id"] == str(tx) and event["id_tag"] == "RFID-42"
    assert event["energy_wh"] == 2400.0 and event["peak_current"] == 16.0
    assert event["solar_share"] == 75.0 and event["solar_energy_wh"] == 1800.0
    assert event["reason"] == "EVDisconnected" and event["charger"] == "cp-a" and event["connector"] == 1
    started, ended = datetime.fromisoformat(event["started"]), datetime.fromisoformat(event["ended"])
    assert started <= ended and event["duration"] == round((ended - started).total_seconds(), 1)
    async with Probe(mqtt_url) as late:  # a client that comes later finds it retained
        await late.subscribe(T.session_last(site_id, "carport"))
        last = await late.expect(T.session_last(site_id, "carport"))
        assert last.retain and last.json() == event
    await probe.publish(T.measurement(site_id), None, retain=True)


@pytest.mark.parametrize("pause", [0.2, 0.0], ids=["paced", "burst"])
async def test_v201_transaction_event_ended_is_a_finished_session(
        mqtt_url: str, probe: Probe, site_id: str, pause: float) -> None:
    """Issue 17: 2.0.1 — the idToken of the Started event, the register of the Started and Ended events, the
    stoppedReason; the site exports while the car draws 3 × 10 A: all of it is solar. In a burst the readings
    reach the adapter together: each still counts (one replaced by the next left the session no solar part)."""
    await probe.subscribe(T.session_event(site_id, "carport"))
    await probe.publish(T.measurement(site_id), site_measurement(site_id, -800.0, 7700.0), retain=True)
    async with with_charger(mqtt_url, site_id, [charger_load(site_id)], version="2.0.1") as cp:
        await cp.boot()
        await cp.status("Occupied")
        await cp.transaction("Started", "Charging", tx="tx-9", id_token="RFID-7", energy_wh=2_000.0)
        await cp.meter(legs={"L1": 10.0, "L2": 10.0, "L3": 10.0})
        await asyncio.sleep(pause)
        await cp.meter(legs={"L1": 10.0, "L2": 10.0, "L3": 10.0})
        await cp.transaction("Ended", "EVConnected", tx="tx-9", energy_wh=2_650.0, stopped_reason="EVDisconnected")
        event = (await probe.expect(T.session_event(site_id, "carport"), timeout=8)).json()
    assert (event["transaction_id"], event["id_tag"], event["reason"]) == ("tx-9", "RFID-7", "EVDisconnected")
    assert event["energy_wh"] == 650.0 and event["solar_share"] == 100.0 and event["peak_current"] == 10.0
    await probe.publish(T.measurement(site_id), None, retain=True)


async def test_v16_unplugged_without_stop_transaction_ends_the_session(
        mqtt_url: str, probe: Probe, site_id: str) -> None:
    """Issue 17: the connector going Available while the session runs (the car is gone, no StopTransaction
    came) ends it, with the last register reading; no solar share without a site measurement."""
    await probe.subscribe(T.session_event(site_id, "carport"))
    async with with_charger(mqtt_url, site_id, [charger_load(site_id)]) as cp:
        await cp.boot()
        await cp.status("Charging")
        await cp.start_transaction(meter_start=500)
        await cp.meter(legs={"L1": 10.0}, energy_wh=900)
        await cp.status("Available")
        event = (await probe.expect(T.session_event(site_id, "carport"), timeout=8)).json()
    assert event["reason"] == "unplugged" and event["energy_wh"] == 400.0 and event["id_tag"] == "tag-1"
    assert event["solar_share"] is None and event["peak_current"] == 10.0


def period(payload: dict[str, Any]) -> dict[str, Any]:
    """The first period of a live profile (1.6 or 2.0.1)."""
    profile = payload.get("csChargingProfiles") or payload["chargingProfile"]
    schedule = profile["chargingSchedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    return dict(schedule["chargingSchedulePeriod"][0])


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_phase_switching_follows_the_setpoint_phases(
    mqtt_url: str, probe: Probe, site_id: str, version: str
) -> None:
    """``phase_switching: ocpp``: the state says the charger can switch; a 1-phase setpoint (the allocator's
    switch) makes the live profile ``numberPhases`` 1 — with 2.0.1 ``phaseToUse`` naming the one-phase leg
    where the charger can choose it — and a 3-phase one brings 3 back."""
    await probe.subscribe(T.load_state(site_id, "carport"))
    load = charger_load(site_id, charger="cp-b", phase_switching="ocpp", one_phase_leg="L2",
                        phase_to_use=version == "2.0.1", rate_unit="A")
    async with with_charger(mqtt_url, site_id, [load], "CP-B", version=version) as cp:
        await cp.boot()
        await cp.status("Available")
        state = (await probe.expect(T.load_state(site_id, "carport"))).model(LoadState)
        assert state.phase_switching and state.one_phase_leg == "L2"

        def live(p: dict[str, Any]) -> bool:
            profile = p.get("csChargingProfiles") or p["chargingProfile"]
            return bool(profile.get("chargingProfileId", profile.get("id")) == 11)

        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=0.0, phases=[Phase.B]))
        paused = period(await cp.wait_call("SetChargingProfile", where=lambda p: live(p) and period(p)["limit"] == 0))
        assert paused["numberPhases"] == 1
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=9.0, phases=[Phase.B]))
        one = period(await cp.wait_call("SetChargingProfile", where=lambda p: live(p) and period(p)["limit"] == 9))
        expected = {"startPeriod": 0, "limit": 9.0, "numberPhases": 1}
        if version == "2.0.1":
            expected["phaseToUse"] = 2
        assert one == expected
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=7.0, phases=ALL))
        three = period(await cp.wait_call("SetChargingProfile", where=lambda p: live(p) and period(p)["limit"] == 7))
        assert three == {"startPeriod": 0, "limit": 7.0, "numberPhases": 3}


async def test_relay_switched_phases_break_before_make(mqtt_url: str, probe: Probe, site_id: str) -> None:
    """``phase_switching: relay``: a contactor behind an MQTT switch (on = three phases). The adapter holds the
    live profile at 0 A until the contactor is where the setpoint's phases want it, and switches it only while
    the charger has our 0 A profile and the car has drawn nothing for ``phase_relay_settle``."""
    from .devices import PlainSwitch

    base = f"dev-{site_id}/contactor"
    at_switch: list[tuple[str, list[float]]] = []

    class Contactor(PlainSwitch):
        """Records what live limits the charger had been sent when each command reached the contactor."""

        async def handle(self, topic: str, text: str) -> None:
            at_switch.append((text, [limit16(p) for p in cp.of("SetChargingProfile") if live16(p)]))
            await super().handle(topic, text)

    load = charger_load(site_id, rate_unit="A", phase_switching="relay", phase_relay_settle=0.3,
                        phase_relay={"driver": "mqtt", "command_topic": f"{base}/set",
                                     "state_topic": f"{base}/state", "state_field": "state"})
    async with Contactor(mqtt_url, base, load_w=0.0) as contactor, \
            with_charger(mqtt_url, site_id, [load]) as cp:
        await cp.boot()
        await cp.status("Charging")
        # three phases wanted, the contactor is off: 0 A first, then the contactor, then the limit
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=10.0, phases=ALL))
        await cp.wait_call("SetChargingProfile", where=lambda p: live16(p) and limit16(p) == 10.0)
        assert contactor.output is True
        assert at_switch[0] == ("ON", [0.0])
        # the car charges on three phases; the allocator pauses it to switch to one phase
        await cp.meter(legs={"L1": 10.0, "L2": 10.0, "L3": 10.0})
        await asyncio.sleep(0.3)
        await probe.publish(T.setpoint(site_id, "carport"),
                            setpoint(site_id, "carport", current=0.0, phases=[Phase.A]))
        await probe.publish(T.setpoint(site_id, "carport"),
                            setpoint(site_id, "carport", current=8.0, phases=[Phase.A]))
        await asyncio.sleep(1.0)
        assert contactor.output is True  # the car still draws (as last metered): the contactor stays
        await cp.meter(legs={"L1": 0.0, "L2": 0.0, "L3": 0.0})
        one = await cp.wait_call("SetChargingProfile", where=lambda p: live16(p) and limit16(p) == 8.0)
        assert contactor.output is False
        assert at_switch[-1][0] == "OFF" and at_switch[-1][1][-1] == 0.0 and 8.0 not in at_switch[-1][1]
        assert one["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] == 1


async def test_an_idle_chargers_loop_builds_its_state_only_when_something_changed(
        mqtt_url: str, probe: Probe, site_id: str) -> None:
    """At rest (a thousand chargers, most of them charging steadily), a turn of a charger's loop that heard
    nothing new builds no state; a reading builds and publishes one at once, and the state is still renewed
    every ``state_interval`` (2 s here, ticks every 0.1 s)."""
    await probe.subscribe(T.load_state(site_id, "carport"))
    async with (ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gw, running(mqtt_url, [charger_load(site_id)]) as svc,
                charge_point(gw.url, "CP-A") as cp):
        adapter = svc.adapter(site_id, "carport")
        built: list[float] = []
        build = adapter.build_state

        def counted() -> LoadState:
            built.append(asyncio.get_running_loop().time())
            return build()

        adapter.build_state = counted  # type: ignore[method-assign]
        await cp.boot()
        await cp.status("Charging")
        await cp.meter(legs={"L1": 10.0, "L2": 10.0, "L3": 10.0})
        await probe.expect(T.load_state(site_id, "carport"), where=lambda m: m.json()["draw"].get("A") == 10.0)
        await asyncio.sleep(0.5)
        mark, before = probe.mark(), len(built)
        await asyncio.sleep(1.2)  # twelve turns, nothing new
        assert len(built) - before <= 1, f"{len(built) - before} states built in 12 idle turns"
        await cp.meter(legs={"L1": 7.0, "L2": 7.0, "L3": 7.0})
        await probe.expect(T.load_state(site_id, "carport"), after=mark, timeout=2,
                           where=lambda m: m.json()["draw"].get("A") == 7.0)
        renewed = await probe.expect(T.load_state(site_id, "carport"), after=probe.mark(), timeout=3)
        assert renewed.json()["draw"]["A"] == 7.0  # renewed within state_interval, unchanged


async def test_an_idle_chargers_loop_sleeps_until_its_next_deadline(
        mqtt_url: str, probe: Probe, site_id: str) -> None:
    """A charger's loop turns when news comes or something is due, not every tick: a charging car that says
    nothing new leaves its loop asleep (ticks every 0.1 s here), yet the live profile is renewed on time
    (``renew_every`` 2 s) and a refused renewal is retried after ``retry_initial`` (0.3 s), well before the
    next turn the state's renewal (``state_interval`` 2 s) would bring."""
    load = charger_load(site_id, rate_unit="A", renew_every=2.0, lifetime=6.0)
    async with (ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gw, running(mqtt_url, [load]) as svc,
                charge_point(gw.url, "CP-A") as cp):
        adapter = svc.adapter(site_id, "carport")
        turns: list[float] = []
        step = adapter.step

        async def counted() -> None:
            turns.append(asyncio.get_running_loop().time())
            await step()

        adapter.step = counted  # type: ignore[method-assign]
        await cp.boot()
        await cp.status("Charging")
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=10.0, phases=ALL))
        await cp.wait_call("SetChargingProfile", where=lambda p: live16(p) and limit16(p) == 10.0)
        await asyncio.sleep(0.3)  # the answer is in
        before = len(turns)
        await asyncio.sleep(1.0)  # ten ticks, nothing new
        assert len(turns) - before <= 3, f"{len(turns) - before} turns in ten idle ticks"

        mark = cp.mark()
        renewed = await cp.wait_call("SetChargingProfile", where=live16, after=mark, timeout=4)
        assert limit16(renewed) == 10.0  # nobody asked: renewed on its deadline

        cp.reject_profiles = 1
        mark = cp.mark()
        await cp.wait_call("SetChargingProfile", where=live16, after=mark, timeout=4)  # refused
        refused_at = asyncio.get_running_loop().time()
        await cp.wait_call("SetChargingProfile", where=live16, after=mark + 1, timeout=4)  # retried
        assert asyncio.get_running_loop().time() - refused_at < 1.5
