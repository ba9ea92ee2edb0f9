# mypy: disable-error-code="untyped-decorator"
"""OCPP 2.0.1: what a 2.0.1 charging station says, answered and published on its topics.

Topic numbering: ``connector/<n>`` is the **EVSE id** (what 2.0.1 charging profiles target, and what a 1.6
connector id means); the connector within the EVSE is ``ConnectorStatus.connector_id``.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on  # type: ignore[import-untyped]
from ocpp.v201 import ChargePoint as V201ChargePoint  # type: ignore[import-untyped]
from ocpp.v201 import call_result
from ocpp.v201.enums import Action, RegistrationStatusEnumType  # type: ignore[import-untyped]

from shared.models import ChargerBoot, ChargerHeartbeat, ConnectorStatus, OcppVersion, TransactionState

from .meter import charger_time
from .session import ChargerSession, ocpp_time, reported

_EVENT_STATE = {"Started": "started", "Updated": "updated", "Ended": "ended"}


class ChargePoint201(ChargerSession, V201ChargePoint):  # type: ignore[misc]
    version = OcppVersion.V201
    known_actions = frozenset(action.value for action in Action)

    @on(Action.boot_notification)
    @reported
    async def on_boot_notification(self, charging_station: dict[str, Any], reason: str, **kw: Any
                                   ) -> call_result.BootNotification:
        status = RegistrationStatusEnumType.pending if self.admission.pending else RegistrationStatusEnumType.accepted
        await self.publish_boot(ChargerBoot(
            site=self.site, charger=self.charger, ocpp_id=self.admission.ocpp_id, ocpp_version=self.version,
            vendor=charging_station.get("vendor_name", ""), model=charging_station.get("model", ""),
            firmware=charging_station.get("firmware_version"), serial=charging_station.get("serial_number"),
            registration=status.value, ts=self.now()))
        return call_result.BootNotification(current_time=ocpp_time(self.now()),
                                            interval=self.ctx.config.heartbeat_interval, status=status)

    @on(Action.heartbeat)
    @reported
    async def on_heartbeat(self, **kw: Any) -> call_result.Heartbeat:
        await self.publish(self.topics.charger_heartbeat(self.site, self.charger),
                           ChargerHeartbeat(site=self.site, charger=self.charger, ts=self.now()))
        return call_result.Heartbeat(current_time=ocpp_time(self.now()))

    @on(Action.status_notification)
    @reported
    async def on_status_notification(self, connector_status: str, evse_id: int, connector_id: int, **kw: Any
                                     ) -> call_result.StatusNotification:
        before = self.memory.status.get(evse_id)
        await self.publish_status(ConnectorStatus(
            site=self.site, charger=self.charger, connector=evse_id, evse=evse_id, connector_id=connector_id,
            status=connector_status, charging_state=before.charging_state if before else None, ts=self.now(),
            charger_time=charger_time(kw.get("timestamp"))))
        return call_result.StatusNotification()

    @on(Action.meter_values)
    @reported
    async def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **kw: Any
                              ) -> call_result.MeterValues:
        await self.publish_meter(evse_id, meter_value)
        return call_result.MeterValues()

    @on(Action.authorize)
    @reported
    async def on_authorize(self, id_token: dict[str, Any], **kw: Any) -> call_result.Authorize:
        return call_result.Authorize(id_token_info={"status": self.id_tag_status(id_token.get("id_token"))})

    @on(Action.transaction_event)
    @reported
    async def on_transaction_event(self, event_type: str, transaction_info: dict[str, Any], **kw: Any
                                   ) -> call_result.TransactionEvent:
        transaction_id = str(transaction_info["transaction_id"])
        evse = kw.get("evse") or {}
        if "id" in evse:
            connector = int(evse["id"])
            self.memory.remember_transaction(transaction_id, connector)
        else:
            connector = self.memory.transactions.get(transaction_id, 0)
        if event_type == "Ended":
            self.memory.transactions.pop(transaction_id, None)
        meter = await self.publish_meter(connector, kw.get("meter_value"), transaction_id)
        id_token = (kw.get("id_token") or {}).get("id_token")
        energy = meter.energy_wh if meter is not None else None
        await self.publish(self.topics.connector_transaction(self.site, self.charger, connector), TransactionState(
            site=self.site, charger=self.charger, connector=connector, transaction_id=transaction_id,
            state=_EVENT_STATE.get(event_type, "updated"), id_tag=id_token,
            meter_start_wh=energy if event_type == "Started" else None,
            meter_stop_wh=energy if event_type == "Ended" else None,
            reason=transaction_info.get("stopped_reason") or kw.get("trigger_reason"), ts=self.now()))
        charging_state = transaction_info.get("charging_state")
        before = self.memory.status.get(connector)
        if charging_state is not None and before is not None and before.charging_state != charging_state:
            await self.publish_status(before.model_copy(update={
                "charging_state": charging_state, "ts": self.now(), "charger_time": charger_time(kw.get("timestamp"))}))
        if id_token is None:
            return call_result.TransactionEvent()
        return call_result.TransactionEvent(id_token_info={"status": self.id_tag_status(id_token)})

    @on(Action.data_transfer)
    @reported
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> call_result.DataTransfer:
        await self.event("DataTransfer")
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.notify_ev_charging_needs)
    @reported
    async def on_notify_ev_charging_needs(self, **kw: Any) -> call_result.NotifyEVChargingNeeds:
        await self.event("NotifyEVChargingNeeds")
        return call_result.NotifyEVChargingNeeds(status="Rejected")  # no ISO 15118 schedules from us

    @on(Action.notify_ev_charging_schedule)
    @reported
    async def on_notify_ev_charging_schedule(self, **kw: Any) -> call_result.NotifyEVChargingSchedule:
        await self.event("NotifyEVChargingSchedule")
        return call_result.NotifyEVChargingSchedule(status="Accepted")

    # Notifications answered with an empty response and published as events.
    @on(Action.notify_event)
    @reported
    async def on_notify_event(self, **kw: Any) -> call_result.NotifyEvent:
        await self.event("NotifyEvent")
        return call_result.NotifyEvent()

    @on(Action.notify_report)
    @reported
    async def on_notify_report(self, **kw: Any) -> call_result.NotifyReport:
        await self.event("NotifyReport")
        return call_result.NotifyReport()

    @on(Action.firmware_status_notification)
    @reported
    async def on_firmware_status_notification(self, **kw: Any) -> call_result.FirmwareStatusNotification:
        await self.event("FirmwareStatusNotification")
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    @reported
    async def on_log_status_notification(self, **kw: Any) -> call_result.LogStatusNotification:
        await self.event("LogStatusNotification")
        return call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    @reported
    async def on_security_event_notification(self, **kw: Any) -> call_result.SecurityEventNotification:
        await self.event("SecurityEventNotification")
        return call_result.SecurityEventNotification()

    @on(Action.notify_charging_limit)
    @reported
    async def on_notify_charging_limit(self, **kw: Any) -> call_result.NotifyChargingLimit:
        await self.event("NotifyChargingLimit")
        return call_result.NotifyChargingLimit()

    @on(Action.cleared_charging_limit)
    @reported
    async def on_cleared_charging_limit(self, **kw: Any) -> call_result.ClearedChargingLimit:
        await self.event("ClearedChargingLimit")
        return call_result.ClearedChargingLimit()

    @on(Action.report_charging_profiles)
    @reported
    async def on_report_charging_profiles(self, **kw: Any) -> call_result.ReportChargingProfiles:
        await self.event("ReportChargingProfiles")
        return call_result.ReportChargingProfiles()

    @on(Action.notify_monitoring_report)
    @reported
    async def on_notify_monitoring_report(self, **kw: Any) -> call_result.NotifyMonitoringReport:
        await self.event("NotifyMonitoringReport")
        return call_result.NotifyMonitoringReport()

    @on(Action.reservation_status_update)
    @reported
    async def on_reservation_status_update(self, **kw: Any) -> call_result.ReservationStatusUpdate:
        await self.event("ReservationStatusUpdate")
        return call_result.ReservationStatusUpdate()

    @on(Action.publish_firmware_status_notification)
    @reported
    async def on_publish_firmware_status_notification(self, **kw: Any
                                                      ) -> call_result.PublishFirmwareStatusNotification:
        await self.event("PublishFirmwareStatusNotification")
        return call_result.PublishFirmwareStatusNotification()

    @on(Action.notify_customer_information)
    @reported
    async def on_notify_customer_information(self, **kw: Any) -> call_result.NotifyCustomerInformation:
        await self.event("NotifyCustomerInformation")
        return call_result.NotifyCustomerInformation()

    @on(Action.notify_display_messages)
    @reported
    async def on_notify_display_messages(self, **kw: Any) -> call_result.NotifyDisplayMessages:
        await self.event("NotifyDisplayMessages")
        return call_result.NotifyDisplayMessages()
