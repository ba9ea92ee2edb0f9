"""The OCPP charger adapter against the real gateway, real Mosquitto and real OCPP charge points (1.6J, 2.0.1),
checking the exact profiles the charger receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

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
        assert baseline == {"connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 10, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": {
                "chargingRateUnit": "A", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 6.0, "numberPhases": 3}]}}}

        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=10.0, phases=ALL))
        live = await cp.wait_call("SetChargingProfile", where=live16)
        assert live == {"connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 11, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": {
                "chargingRateUnit": "A", "duration": 3, "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 10.0, "numberPhases": 3}]}}}

        # nobody publishes anything new: the adapter renews the live profile before its lifetime ends
        mark = cp.mark()
        renewed = await cp.wait_call("SetChargingProfile", where=live16, after=mark)
        assert renewed == live

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
        assert live["chargingProfileKind"] == "Absolute"
        valid_from = datetime.fromisoformat(live["validFrom"])
        valid_to = datetime.fromisoformat(live["validTo"])
        assert (valid_to - valid_from).total_seconds() == 60
        assert live["chargingSchedule"]["startSchedule"] == live["validFrom"]
        # the allocator goes quiet: the setpoint expires and the live profile is cleared, leaving the baseline
        assert await cp.wait_call("ClearChargingProfile") == {"id": 11}
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
        assert profile["chargingSchedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 14.0, "numberPhases": 3},
            {"startPeriod": 90, "limit": 6.0, "numberPhases": 3}]
        assert "duration" not in profile["chargingSchedule"]


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
        assert baseline == {"evseId": 1, "chargingProfile": {
            "id": 10, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": [{
                "id": 10, "chargingRateUnit": "A", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 6.0, "numberPhases": 3}]}]}}
        await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=11.0, phases=ALL))
        live = await cp.wait_call("SetChargingProfile", where=lambda p: p["chargingProfile"]["id"] == 11)
        assert live == {"evseId": 1, "chargingProfile": {
            "id": 11, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": [{
                "id": 11, "chargingRateUnit": "A", "duration": 3, "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 11.0, "numberPhases": 3}]}]}}
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
        assert await cp.wait_call("ClearChargingProfile", after=mark) == {"id": 11}
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
