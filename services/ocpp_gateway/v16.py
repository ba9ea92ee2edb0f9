# mypy: disable-error-code="untyped-decorator"
"""OCPP 1.6J: what a 1.6 charger says, answered and published on its topics."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on  # type: ignore[import-untyped]
from ocpp.v16 import ChargePoint as V16ChargePoint  # type: ignore[import-untyped]
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, RegistrationStatus  # type: ignore[import-untyped]

from shared.models import ChargerBoot, ChargerHeartbeat, ConnectorStatus, OcppVersion, TransactionState

from .meter import charger_time
from .session import ChargerSession, ocpp_time, reported


class ChargePoint16(ChargerSession, V16ChargePoint):  # type: ignore[misc]
    version = OcppVersion.V16
    known_actions = frozenset(action.value for action in Action)

    @on(Action.boot_notification)
    @reported
    async def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kw: Any
                                   ) -> call_result.BootNotification:
        status = RegistrationStatus.pending if self.admission.pending else RegistrationStatus.accepted
        await self.publish_boot(ChargerBoot(
            site=self.site, charger=self.charger, ocpp_id=self.admission.ocpp_id, ocpp_version=self.version,
            vendor=charge_point_vendor, model=charge_point_model, firmware=kw.get("firmware_version"),
            serial=kw.get("charge_point_serial_number") or kw.get("charge_box_serial_number"),
            registration=status.value, ts=self.now()))
        return call_result.BootNotification(current_time=ocpp_time(self.now()),
                                            interval=self.ctx.config.heartbeat_interval, status=status)

    @on(Action.heartbeat)
    @reported
    async def on_heartbeat(self) -> call_result.Heartbeat:
        await self.publish(self.topics.charger_heartbeat(self.site, self.charger),
                           ChargerHeartbeat(site=self.site, charger=self.charger, ts=self.now()))
        return call_result.Heartbeat(current_time=ocpp_time(self.now()))

    @on(Action.status_notification)
    @reported
    async def on_status_notification(self, connector_id: int, error_code: str, status: str, **kw: Any
                                     ) -> call_result.StatusNotification:
        await self.publish_status(ConnectorStatus(
            site=self.site, charger=self.charger, connector=connector_id, status=status,
            error_code=error_code, info=kw.get("info") or kw.get("vendor_error_code"), ts=self.now(),
            charger_time=charger_time(kw.get("timestamp"))))
        return call_result.StatusNotification()

    @on(Action.meter_values)
    @reported
    async def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]], **kw: Any
                              ) -> call_result.MeterValues:
        transaction = kw.get("transaction_id")
        await self.publish_meter(connector_id, meter_value, None if transaction is None else str(transaction))
        return call_result.MeterValues()

    @on(Action.authorize)
    @reported
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": self.id_tag_status(id_tag)})

    @on(Action.start_transaction)
    @reported
    async def on_start_transaction(self, connector_id: int, id_tag: str, meter_start: int, **kw: Any
                                   ) -> call_result.StartTransaction:
        status = self.id_tag_status(id_tag)
        transaction_id = next(self.ctx.transaction_ids)
        self.memory.remember_transaction(str(transaction_id), connector_id)
        await self.publish(self.topics.connector_transaction(self.site, self.charger, connector_id), TransactionState(
            site=self.site, charger=self.charger, connector=connector_id, transaction_id=str(transaction_id),
            state="started", id_tag=id_tag, meter_start_wh=float(meter_start),
            reason=None if status == "Accepted" else f"id tag {status}", ts=self.now()))
        return call_result.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": status})

    @on(Action.stop_transaction)
    @reported
    async def on_stop_transaction(self, meter_stop: int, transaction_id: int, **kw: Any
                                  ) -> call_result.StopTransaction:
        connector = self.memory.transactions.pop(str(transaction_id), None)
        if connector is None:
            self.report("unknown_transaction", f"StopTransaction for transaction {transaction_id} it never started "
                        "here; published on connector 0")
            connector = 0
        if kw.get("transaction_data"):
            await self.publish_meter(connector, kw["transaction_data"], str(transaction_id))
        await self.publish(self.topics.connector_transaction(self.site, self.charger, connector), TransactionState(
            site=self.site, charger=self.charger, connector=connector, transaction_id=str(transaction_id),
            state="ended", id_tag=kw.get("id_tag"), meter_stop_wh=float(meter_stop), reason=kw.get("reason"),
            ts=self.now()))
        id_tag = kw.get("id_tag")
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info={"status": self.id_tag_status(id_tag)})

    @on(Action.data_transfer)
    @reported
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> call_result.DataTransfer:
        await self.event("DataTransfer")
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.firmware_status_notification)
    @reported
    async def on_firmware_status_notification(self, **kw: Any) -> call_result.FirmwareStatusNotification:
        await self.event("FirmwareStatusNotification")
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    @reported
    async def on_diagnostics_status_notification(self, **kw: Any) -> call_result.DiagnosticsStatusNotification:
        await self.event("DiagnosticsStatusNotification")
        return call_result.DiagnosticsStatusNotification()

    @on(Action.security_event_notification)
    @reported
    async def on_security_event_notification(self, **kw: Any) -> call_result.SecurityEventNotification:
        await self.event("SecurityEventNotification")
        return call_result.SecurityEventNotification()

    @on(Action.log_status_notification)
    @reported
    async def on_log_status_notification(self, **kw: Any) -> call_result.LogStatusNotification:
        await self.event("LogStatusNotification")
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    @reported
    async def on_signed_firmware_status_notification(self, **kw: Any
                                                     ) -> call_result.SignedFirmwareStatusNotification:
        await self.event("SignedFirmwareStatusNotification")
        return call_result.SignedFirmwareStatusNotification()
