# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""Boot → status → meter values → transactions appear on topics; commands go out and answers come back."""

from __future__ import annotations

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from shared.models import (
    ChargerBoot,
    ChargerEvent,
    ConnectorMeter,
    ConnectorStatus,
    Leg,
    OcppCommand,
    OcppResult,
    TransactionState,
)
from shared.probe import Probe
from shared.topics import Topics

from .conftest import GatewayFactory, charger

PROFILE_16 = {
    "connectorId": 1,
    "csChargingProfiles": {
        "chargingProfileId": 7, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "duration": 120,
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.5}]},
    },
}
PROFILE_201 = {
    "evseId": 1,
    "chargingProfile": {
        "id": 7, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
        "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "duration": 120,
                              "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.5}]}],
    },
}


async def test_v16_boot_status_meter_transaction_and_profile(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"CP_16": {"site": site_id}}) as gateway, charger(gateway, "CP_16") as cp:
        await probe.expect(topics.charger_availability(site_id, "cp-16"), where=lambda m: m.text == "online")
        answer = await cp.call(call16.BootNotification(charge_point_vendor="Acme", charge_point_model="Wall",
                                                       firmware_version="1.2.3"))
        assert answer.status == "Accepted"
        boot = (await probe.expect(topics.charger_boot(site_id, "cp-16"))).model(ChargerBoot)
        assert (boot.vendor, boot.model, boot.firmware, boot.ocpp_id, boot.ocpp_version) == (
            "Acme", "Wall", "1.2.3", "CP_16", "1.6")

        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        status = (await probe.expect(topics.connector_status(site_id, "cp-16", 1))).model(ConnectorStatus)
        assert status.status == "Preparing"

        started = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=1000,
                                                        timestamp="2026-12-01T00:00:00Z"))
        assert started.id_tag_info["status"] == "Accepted"
        tx = (await probe.expect(topics.connector_transaction(site_id, "cp-16", 1))).model(TransactionState)
        assert (tx.state, tx.transaction_id, tx.meter_start_wh) == ("started", str(started.transaction_id), 1000.0)

        await cp.call(call16.MeterValues(connector_id=1, transaction_id=started.transaction_id, meter_value=[{
            "timestamp": "2026-12-01T00:00:10Z",
            "sampledValue": [
                {"value": "15.5", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                {"value": "15.0", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
                {"value": "14.5", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
                {"value": "16", "measurand": "Current.Offered", "unit": "A"},
                {"value": "10.7", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "1.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                {"value": "231", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
            ]}]))
        meter = (await probe.expect(topics.connector_meter(site_id, "cp-16", 1))).model(ConnectorMeter)
        assert meter.current_import == {Leg.L1: 15.5, Leg.L2: 15.0, Leg.L3: 14.5}
        assert (meter.current_offered, meter.power, meter.energy_wh) == (16.0, 10700.0, 1500.0)
        assert meter.voltage == {Leg.L1: 231.0}
        assert meter.transaction_id == str(started.transaction_id)
        assert len(meter.samples) == 7

        mark = probe.mark()
        await probe.publish(topics.charger_command(site_id, "cp-16", "SetChargingProfile"),
                            OcppCommand(request_id="r-1", payload=PROFILE_16))
        result = (await probe.expect(topics.charger_result(site_id, "cp-16", "SetChargingProfile"),
                                     after=mark)).model(OcppResult)
        assert (result.ok, result.request_id, result.response) == (True, "r-1", {"status": "Accepted"})
        assert cp.received[0][0] == "SetChargingProfile"
        assert cp.received[0][1]["cs_charging_profiles"]["charging_schedule"]["charging_schedule_period"] == [
            {"start_period": 0, "limit": 10.5}]

        await cp.call(call16.StopTransaction(meter_stop=2500, timestamp="2026-12-01T01:00:00Z",
                                             transaction_id=started.transaction_id, reason="EVDisconnected"))
        ended = await probe.expect(topics.connector_transaction(site_id, "cp-16", 1),
                                   where=lambda m: m.json()["state"] == "ended")
        assert ended.model(TransactionState).meter_stop_wh == 2500.0


async def test_v201_boot_status_meter_transaction_and_profile(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"CS-201": {"site": site_id}}) as gateway, \
            charger(gateway, "CS-201", "2.0.1") as cs:
        answer = await cs.call(call201.BootNotification(
            charging_station={"model": "Wall2", "vendor_name": "Acme", "firmware_version": "2.0"}, reason="PowerUp"))
        assert answer.status == "Accepted"
        boot = (await probe.expect(topics.charger_boot(site_id, "cs-201"))).model(ChargerBoot)
        assert (boot.vendor, boot.model, boot.ocpp_version) == ("Acme", "Wall2", "2.0.1")

        await cs.call(call201.StatusNotification(timestamp="2026-12-01T00:00:00Z", connector_status="Occupied",
                                                 evse_id=1, connector_id=1))
        status = (await probe.expect(topics.connector_status(site_id, "cs-201", 1))).model(ConnectorStatus)
        assert (status.status, status.evse, status.connector_id) == ("Occupied", 1, 1)

        await cs.call(call201.TransactionEvent(
            event_type="Started", timestamp="2026-12-01T00:00:01Z", trigger_reason="CablePluggedIn", seq_no=0,
            transaction_info={"transactionId": "tx-9", "chargingState": "Charging"}, evse={"id": 1, "connectorId": 1},
            id_token={"idToken": "TAG1", "type": "ISO14443"},
            meter_value=[{"timestamp": "2026-12-01T00:00:01Z", "sampledValue": [
                {"value": 1200, "measurand": "Energy.Active.Import.Register"}]}]))
        tx = (await probe.expect(topics.connector_transaction(site_id, "cs-201", 1))).model(TransactionState)
        assert (tx.state, tx.transaction_id, tx.id_tag, tx.meter_start_wh) == ("started", "tx-9", "TAG1", 1200.0)
        charging = await probe.expect(topics.connector_status(site_id, "cs-201", 1),
                                      where=lambda m: m.json()["charging_state"] == "Charging")
        assert charging.model(ConnectorStatus).status == "Occupied"

        await cs.call(call201.MeterValues(evse_id=1, meter_value=[{
            "timestamp": "2026-12-01T00:00:10Z",
            "sampledValue": [
                {"value": 7.5, "measurand": "Current.Import", "phase": "L1"},
                {"value": 7.0, "measurand": "Current.Import", "phase": "L2"},
                {"value": 16.0, "measurand": "Current.Offered"},
                {"value": 5.2, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
                {"value": 55, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}},
            ]}]))
        meter = (await probe.expect(topics.connector_meter(site_id, "cs-201", 1),
                                    where=lambda m: m.json()["soc"] is not None)).model(ConnectorMeter)
        assert meter.current_import == {Leg.L1: 7.5, Leg.L2: 7.0}
        assert (meter.current_offered, meter.power, meter.soc) == (16.0, 5200.0, 55.0)

        mark = probe.mark()
        await probe.publish(topics.charger_command(site_id, "cs-201", "SetChargingProfile"),
                            OcppCommand(request_id="r-2", payload=PROFILE_201))
        result = (await probe.expect(topics.charger_result(site_id, "cs-201", "SetChargingProfile"),
                                     after=mark)).model(OcppResult)
        assert (result.ok, result.response) == (True, {"status": "Accepted"})
        assert cs.received[0][1]["charging_profile"]["id"] == 7

        # Ended names no EVSE: the gateway remembers which EVSE the transaction is on
        await cs.call(call201.TransactionEvent(
            event_type="Ended", timestamp="2026-12-01T01:00:00Z", trigger_reason="EVCommunicationLost", seq_no=1,
            transaction_info={"transactionId": "tx-9", "stoppedReason": "EVDisconnected"},
            meter_value=[{"timestamp": "2026-12-01T01:00:00Z", "sampledValue": [
                {"value": 9.5, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "kWh"}}]}]))
        ended = await probe.expect(topics.connector_transaction(site_id, "cs-201", 1),
                                   where=lambda m: m.json()["state"] == "ended")
        assert (ended.model(TransactionState).meter_stop_wh, ended.json()["reason"]) == (9500.0, "EVDisconnected")


async def test_authorize_policy_notifications_and_data_transfer(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"CP": {"site": site_id}, "CS": {"site": site_id}}, authorize="allowlist",
                           id_tags=["GOOD-TAG"]) as gateway, \
            charger(gateway, "CP") as cp, charger(gateway, "CS", "2.0.1") as cs:
        assert (await cp.call(call16.Authorize(id_tag="GOOD-TAG"))).id_tag_info["status"] == "Accepted"
        assert (await cp.call(call16.Authorize(id_tag="STOLEN"))).id_tag_info["status"] == "Invalid"
        refused = await cp.call(call16.StartTransaction(connector_id=2, id_tag="STOLEN", meter_start=0,
                                                        timestamp="2026-12-01T00:00:00Z"))
        assert refused.id_tag_info["status"] == "Invalid"
        tx = await probe.expect(topics.connector_transaction(site_id, "cp", 2))
        assert tx.model(TransactionState).reason == "id tag Invalid"
        token = {"idToken": "STOLEN", "type": "ISO14443"}
        assert (await cs.call(call201.Authorize(id_token=token))).id_token_info["status"] == "Invalid"

        await cp.call(call16.FirmwareStatusNotification(status="Downloading"))
        event = await probe.expect(topics.charger_event(site_id, "cp", "firmware-status-notification"))
        assert event.model(ChargerEvent).data == {"status": "Downloading"}
        await cp.call(call16.DiagnosticsStatusNotification(status="Uploaded"))
        await probe.expect(topics.charger_event(site_id, "cp", "diagnostics-status-notification"))
        answer = await cp.call(call16.DataTransfer(vendor_id="com.acme", message_id="x", data="{}"))
        assert answer.status == "UnknownVendorId"
        transfer = await probe.expect(topics.charger_event(site_id, "cp", "data-transfer"))
        assert transfer.model(ChargerEvent).data["vendorId"] == "com.acme"
        await cs.call(call201.NotifyEvent(generated_at="2026-12-01T00:00:00Z", seq_no=0, event_data=[{
            "eventId": 1, "timestamp": "2026-12-01T00:00:00Z", "trigger": "Alerting", "actualValue": "true",
            "eventNotificationType": "HardWiredMonitor", "component": {"name": "EVSE"},
            "variable": {"name": "Problem"}}]))
        notify = await probe.expect(topics.charger_event(site_id, "cs", "notify-event"))
        assert notify.model(ChargerEvent).data["eventData"][0]["variable"] == {"name": "Problem"}
