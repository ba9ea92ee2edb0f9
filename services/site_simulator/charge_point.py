# mypy: disable-error-code="untyped-decorator"
"""Simulated chargers as real OCPP clients: the ``ocpp`` library's ChargePoint over websockets, 1.6J or
2.0.1, connected to the gateway like a wallbox on the network would be.

:class:`ChargerDevice` owns the connection (reconnecting with backoff), boots, sends heartbeats on the
interval the central system gave, reports the connector's status, the transaction and meter values
(Current.Import per phase, Current.Offered, power, energy register, voltage, SoC), and keeps the charging
profiles it receives in a :class:`ProfileStore`; :meth:`ChargerDevice.control` turns them into the
current the charger offers the car (its pilot signal), every physics step.

The quirks of real chargers are options of its :class:`ChargerSpec`: Relative schedules counted from
receipt instead of the transaction's start, a clock that is off (used for its profiles and its messages'
timestamps, never set from the central system's time), profiles on stack level 0 only, in W only, of kind
Relative only. A profile it cannot take is answered ``Rejected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import websockets
from ocpp.charge_point import ChargePoint  # type: ignore[import-untyped]
from ocpp.routing import on  # type: ignore[import-untyped]
from ocpp.v16 import ChargePoint as V16ChargePoint  # type: ignore[import-untyped]
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16  # type: ignore[import-untyped]
from ocpp.v201 import ChargePoint as V201ChargePoint  # type: ignore[import-untyped]
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201  # type: ignore[import-untyped]

from shared.clock import Clock

from .ev import MIN_PILOT
from .profiles import Profile, ProfileError, ProfileStore, from_v16, from_v201
from .site import LEGS, ChargerPlug

log = logging.getLogger("ampmq.site-simulator.charger")
logging.getLogger("ocpp").setLevel(logging.WARNING)

CONNECTOR = 1


def ocpp_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ChargerDevice:
    """One simulated charger: its plug (physics), its profiles and its OCPP connection."""

    def __init__(self, plug: ChargerPlug, url: str, clock: Clock, meter_interval: float = 10.0,
                 physics_now: Callable[[], datetime] | None = None) -> None:
        self.plug = plug
        #: The physics' time: a profile starts when the charger (whose pilot the physics steps) got it.
        self.physics_now = physics_now or clock.now
        self.spec = plug.spec
        self.ocpp_id = plug.spec.id.upper().replace("-", "_")
        self.url = url.rstrip("/")
        self.clock = clock
        self.meter_interval = meter_interval
        #: How often the charger looks at its connector for something to report (simulated seconds).
        self.check_interval = 5.0
        self.store = ProfileStore(plug.spec.max_current, relative_from=plug.spec.relative_from,
                                  per_evse=plug.spec.ocpp == "2.0.1")
        #: The charger's clock minus the true time (s): its own clock, never set from the central system.
        self.skew = timedelta(seconds=plug.spec.clock_skew)
        self.cp: ChargePoint | None = None
        self.connected = asyncio.Event()
        self.booted = False
        self.heartbeat_interval = 300.0
        self.transaction_id: str | None = None
        #: When the transaction started, in the charger's clock (physics time): Relative schedules count from it.
        self.transaction_start: datetime | None = None
        self.status_sent: str | None = None
        self.charging_state_sent: str | None = None
        self.seq_no = 0
        self.messages_sent = 0
        self.profiles_received = 0
        self.connects = 0
        self._last_meter = -1e18
        self._wake = asyncio.Event()

    # -- physics side --------------------------------------------------------------------------------
    def own_time(self, true_time: datetime) -> datetime:
        """``true_time`` as the charger's clock shows it."""
        return true_time + self.skew

    def stamp(self) -> str:
        """A timestamp for a message the charger sends, in its own clock."""
        return ocpp_time(self.own_time(self.clock.now()))

    def _started(self) -> None:
        self.transaction_start = self.own_time(self.physics_now())

    def control(self, now: datetime) -> float:
        """Set the plug's offered current from the profiles in force at true time ``now``; returns it."""
        phases = max(1, self.plug.phases_used or self.spec.phases)
        offered = self.store.limit(CONNECTOR, self.own_time(now), phases, self.transaction_id,
                                   self.transaction_start)
        self.plug.offered = offered
        if self.spec.phase_switching:
            number = self.store.number_phases(CONNECTOR, self.own_time(now), self.transaction_id,
                                              self.transaction_start)
            self.plug.supplied = min(self.spec.phases, number or self.spec.phases)
        return offered

    def status(self) -> str:
        """The 1.6 connector status the charger would show now."""
        plug = self.plug
        if plug.ev is None:
            return "Available"
        if plug.offered < MIN_PILOT:
            return "SuspendedEVSE"
        if plug.ev.full or (plug.ev.following >= MIN_PILOT and plug.current <= 0 and plug.ev.pending is None):
            return "SuspendedEV"
        return "Charging"

    def samples(self) -> list[tuple[str, str | None, float, str]]:
        """(measurand, phase, value, unit) the charger meters now."""
        plug = self.plug
        out: list[tuple[str, str | None, float, str]] = []
        for leg in LEGS[: self.spec.phases]:
            out.append(("Current.Import", str(leg), round(plug.legs[leg], 2), "A"))
        for leg in LEGS[: self.spec.phases]:
            out.append(("Voltage", str(leg), 230.0, "V"))
        out.append(("Current.Offered", None, round(plug.offered, 2), "A"))
        out.append(("Power.Active.Import", None, round(sum(plug.legs.values()) * 230.0, 1), "W"))
        out.append(("Energy.Active.Import.Register", None, round(plug.energy_wh, 1), "Wh"))
        if plug.ev is not None:
            out.append(("SoC", None, round(plug.ev.soc, 1), "Percent"))
        return out

    # -- connection ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Stay connected (reconnecting with backoff) and report, until cancelled."""
        delay = 0.5
        while True:
            try:
                await self._session()
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped socket, a refused handshake: try again
                log.info("charger %s: connection ended: %s", self.ocpp_id, exc)
            self.connected.clear()
            self.booted = False
            self.cp = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _session(self) -> None:
        subprotocol = "ocpp2.0.1" if self.spec.ocpp == "2.0.1" else "ocpp1.6"
        async with websockets.connect(f"{self.url}/{self.ocpp_id}", subprotocols=[subprotocol],  # type: ignore[list-item]
                                      open_timeout=10, ping_interval=None) as ws:
            cp_class = ChargePoint201 if self.spec.ocpp == "2.0.1" else ChargePoint16
            cp = cp_class(self, ws)
            self.cp = cp
            self.connects += 1
            reader = asyncio.ensure_future(cp.start())
            try:
                await self._boot(cp)
                self.connected.set()
                self.status_sent = None
                self.charging_state_sent = None
                await asyncio.gather(reader, self._heartbeats(cp), self._report(cp))
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader

    async def _boot(self, cp: ChargePoint) -> None:
        while True:
            if self.spec.ocpp == "2.0.1":
                answer = await cp.call(call201.BootNotification(
                    charging_station={"model": "SimWallbox 2", "vendor_name": "ampmq-sim",
                                      "firmware_version": "1.0.0", "serial_number": self.spec.id},
                    reason="PowerUp"))
            else:
                answer = await cp.call(call16.BootNotification(
                    charge_point_vendor="ampmq-sim", charge_point_model="SimWallbox 1",
                    firmware_version="1.0.0", charge_point_serial_number=self.spec.id))
            self.messages_sent += 1
            self.heartbeat_interval = float(answer.interval or 300)
            if answer.status == "Accepted":
                self.booted = True
                return
            await self.clock.sleep(max(self.heartbeat_interval, 10.0))

    async def _heartbeats(self, cp: ChargePoint) -> None:
        while True:
            await self.clock.sleep(self.heartbeat_interval)
            await cp.call(call201.Heartbeat() if self.spec.ocpp == "2.0.1" else call16.Heartbeat())
            self.messages_sent += 1

    def wake(self) -> None:
        self._wake.set()

    async def _report(self, cp: ChargePoint) -> None:
        """Status changes, transactions and periodic meter values, checked every ``check_interval``."""
        sender = self._send201 if self.spec.ocpp == "2.0.1" else self._send16
        while True:
            await sender(cp)
            waiter = asyncio.ensure_future(self._wake.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(self.check_interval))
            try:
                await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                sleeper.cancel()
            self._wake.clear()

    def _meter_due(self) -> bool:
        return self.clock.monotonic() - self._last_meter >= self.meter_interval

    # -- OCPP 1.6 -------------------------------------------------------------------------------------
    async def _send16(self, cp: ChargePoint) -> None:
        now = self.stamp()
        plug = self.plug
        if plug.ev is not None and self.transaction_id is None:
            await self._status16(cp, "Preparing")
            answer = await cp.call(call16.StartTransaction(
                connector_id=CONNECTOR, id_tag=f"SIM-{self.spec.id}"[:20], meter_start=int(plug.energy_wh),
                timestamp=now))
            self.messages_sent += 1
            self.transaction_id = str(answer.transaction_id)
            self._started()
        elif plug.ev is None and self.transaction_id is not None:
            await self._meter16(cp)
            await cp.call(call16.StopTransaction(meter_stop=int(plug.energy_wh), timestamp=now,
                                                 transaction_id=int(self.transaction_id), reason="EVDisconnected"))
            self.messages_sent += 1
            self.transaction_id = None
            self.transaction_start = None
            await self._status16(cp, "Finishing")
        status = self.status()
        if status != self.status_sent:
            await self._status16(cp, status)
            await self._meter16(cp)
        elif self._meter_due():
            await self._meter16(cp)

    async def _status16(self, cp: ChargePoint, status: str) -> None:
        await cp.call(call16.StatusNotification(connector_id=CONNECTOR, error_code="NoError", status=status,
                                                timestamp=self.stamp()))
        self.messages_sent += 1
        self.status_sent = status

    async def _meter16(self, cp: ChargePoint) -> None:
        self._last_meter = self.clock.monotonic()
        sampled = [{"value": f"{value:g}", "measurand": m, "unit": unit, "context": "Sample.Periodic",
                    **({"phase": phase} if phase else {})} for m, phase, value, unit in self.samples()]
        tx = None if self.transaction_id is None else int(self.transaction_id)
        await cp.call(call16.MeterValues(connector_id=CONNECTOR, transaction_id=tx, meter_value=[
            {"timestamp": self.stamp(), "sampled_value": sampled}]))
        self.messages_sent += 1

    # -- OCPP 2.0.1 -----------------------------------------------------------------------------------
    def _meter_value201(self) -> list[dict[str, Any]]:
        sampled = [{"value": value, "measurand": m, "context": "Sample.Periodic",
                    "unit_of_measure": {"unit": unit}, **({"phase": phase} if phase else {})}
                   for m, phase, value, unit in self.samples()]
        return [{"timestamp": self.stamp(), "sampled_value": sampled}]

    def _charging_state(self) -> str:
        return {"Charging": "Charging", "SuspendedEV": "SuspendedEV", "SuspendedEVSE": "SuspendedEVSE"}.get(
            self.status(), "EVConnected")

    async def _transaction_event(self, cp: ChargePoint, event: str, trigger: str, **info: Any) -> None:
        self.seq_no += 1
        assert self.transaction_id is not None
        await cp.call(call201.TransactionEvent(
            event_type=event, timestamp=self.stamp(), trigger_reason=trigger, seq_no=self.seq_no,
            transaction_info={"transaction_id": self.transaction_id, **info},
            evse={"id": CONNECTOR, "connector_id": 1}, meter_value=self._meter_value201()))
        self.messages_sent += 1
        self._last_meter = self.clock.monotonic()

    async def _connector201(self, cp: ChargePoint, status: str) -> None:
        if status == self.status_sent:
            return
        await cp.call(call201.StatusNotification(timestamp=self.stamp(), connector_status=status,
                                                 evse_id=CONNECTOR, connector_id=1))
        self.messages_sent += 1
        self.status_sent = status

    async def _send201(self, cp: ChargePoint) -> None:
        plug = self.plug
        if plug.ev is not None and self.transaction_id is None:
            await self._connector201(cp, "Occupied")
            self.transaction_id = uuid.uuid4().hex[:24]
            self._started()
            self.charging_state_sent = self._charging_state()
            await self._transaction_event(cp, "Started", "CablePluggedIn", charging_state=self.charging_state_sent)
        elif plug.ev is None and self.transaction_id is not None:
            await self._transaction_event(cp, "Ended", "EVCommunicationLost", charging_state="Idle",
                                          stopped_reason="EVDisconnected")
            self.transaction_id = None
            self.transaction_start = None
            self.charging_state_sent = None
        if plug.ev is None:
            await self._connector201(cp, "Available")
            if self._meter_due():
                self._last_meter = self.clock.monotonic()
                await cp.call(call201.MeterValues(evse_id=CONNECTOR, meter_value=self._meter_value201()))
                self.messages_sent += 1
            return
        await self._connector201(cp, "Occupied")
        state = self._charging_state()
        if state != self.charging_state_sent:
            self.charging_state_sent = state
            await self._transaction_event(cp, "Updated", "ChargingStateChanged", charging_state=state)
        elif self._meter_due():
            await self._transaction_event(cp, "Updated", "MeterValuePeriodic")

    # -- what the central system asks -------------------------------------------------------------------
    def _refusal(self, profile: Profile) -> str | None:
        """Why the charger refuses ``profile`` (the standard's rules, then its quirks); None: it takes it."""
        spec = self.spec
        if profile.connector not in (0, CONNECTOR):
            return f"no connector {profile.connector}"
        if profile.purpose == "tx" and self.transaction_id is None:
            return "a TxProfile with no transaction"
        if profile.purpose == "tx" and spec.ocpp == "2.0.1" and profile.transaction_id is None:
            return "a TxProfile without transactionId"  # 2.0.1 K01
        if spec.stack_level_zero_only and profile.stack_level > 0:
            return f"stack level {profile.stack_level} (takes 0 only)"
        if spec.watts_only and profile.unit != "W":
            return f"limits in {profile.unit} (takes W only)"
        if spec.relative_only and profile.kind != "Relative":
            return f"a {profile.kind} profile (takes Relative only)"
        return None

    def take_profile(self, profile_maker: Any) -> str:
        try:
            profile = profile_maker(self.own_time(self.physics_now()))
            refusal = self._refusal(profile)
            if refusal is not None:
                raise ProfileError(refusal)
            self.store.install(profile)
        except (ProfileError, KeyError, TypeError, ValueError) as exc:
            log.warning("charger %s: profile rejected: %s", self.ocpp_id, exc)
            return "Rejected"
        self.profiles_received += 1
        self.control(self.physics_now())
        self.wake()
        return "Accepted"

    def composite(self, duration: int) -> dict[str, Any]:
        now = self.own_time(self.physics_now())
        return {"start": now, "limit": self.store.limit(CONNECTOR, now, max(1, self.plug.phases_used or 3),
                                                          self.transaction_id, self.transaction_start),
                "duration": duration}


def _configuration(device: ChargerDevice) -> dict[str, str]:
    return {
        "ChargingScheduleAllowedChargingRateUnit": "Power" if device.spec.watts_only else "Current,Power",
        "ChargeProfileMaxStackLevel": "0" if device.spec.stack_level_zero_only else "10",
        "ChargingScheduleMaxPeriods": "24",
        "MaxChargingProfilesInstalled": "10",
        "MeterValueSampleInterval": str(int(device.meter_interval)),
        "MeterValuesSampledData": "Current.Import,Current.Offered,Power.Active.Import,Energy.Active.Import.Register",
        "HeartbeatInterval": str(int(device.heartbeat_interval)),
        "NumberOfConnectors": "1",
        "ConnectorPhaseRotation": "1.RST",
    }


class ChargePoint16(V16ChargePoint):  # type: ignore[misc]
    """The 1.6J client side: what the central system may ask a 1.6 charger."""

    def __init__(self, device: ChargerDevice, connection: Any) -> None:
        super().__init__(device.ocpp_id, connection, response_timeout=30)
        self.device = device

    @on(Action16.set_charging_profile)
    async def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **kw: Any
                                      ) -> result16.SetChargingProfile:
        status = self.device.take_profile(lambda now: from_v16(connector_id, cs_charging_profiles, now))
        return result16.SetChargingProfile(status=status)

    @on(Action16.clear_charging_profile)
    async def on_clear_charging_profile(self, **kw: Any) -> result16.ClearChargingProfile:
        found = self.device.store.clear(kw.get("id"), kw.get("connector_id"), kw.get("charging_profile_purpose"),
                                        kw.get("stack_level"))
        self.device.control(self.device.physics_now())
        return result16.ClearChargingProfile(status="Accepted" if found else "Unknown")

    @on(Action16.get_composite_schedule)
    async def on_get_composite_schedule(self, connector_id: int, duration: int, **kw: Any
                                        ) -> result16.GetCompositeSchedule:
        c = self.device.composite(duration)
        return result16.GetCompositeSchedule(status="Accepted", connector_id=connector_id,
                                             schedule_start=ocpp_time(c["start"]), charging_schedule={
                                                 "duration": duration, "charging_rate_unit": "A",
                                                 "charging_schedule_period": [{"start_period": 0,
                                                                               "limit": round(c["limit"], 1)}]})

    @on(Action16.get_configuration)
    async def on_get_configuration(self, key: list[str] | None = None, **kw: Any) -> result16.GetConfiguration:
        config = _configuration(self.device)
        keys = key or list(config)
        return result16.GetConfiguration(
            configuration_key=[{"key": k, "readonly": True, "value": config[k]} for k in keys if k in config],
            unknown_key=[k for k in keys if k not in config] or None)

    @on(Action16.change_configuration)
    async def on_change_configuration(self, key: str, value: str, **kw: Any) -> result16.ChangeConfiguration:
        if key == "MeterValueSampleInterval" and value.isdigit() and int(value) > 0:
            self.device.meter_interval = float(value)
            return result16.ChangeConfiguration(status="Accepted")
        return result16.ChangeConfiguration(status="NotSupported" if key not in _configuration(self.device)
                                            else "Rejected")

    @on(Action16.trigger_message)
    async def on_trigger_message(self, requested_message: str, **kw: Any) -> result16.TriggerMessage:
        if requested_message in ("StatusNotification", "MeterValues"):
            self.device.status_sent = None if requested_message == "StatusNotification" else self.device.status_sent
            self.device._last_meter = -1e18
            self.device.wake()
            return result16.TriggerMessage(status="Accepted")
        return result16.TriggerMessage(status="NotImplemented")

    @on(Action16.remote_start_transaction)
    async def on_remote_start_transaction(self, id_tag: str, **kw: Any) -> result16.RemoteStartTransaction:
        return result16.RemoteStartTransaction(status="Rejected")  # the simulated car starts on plug-in

    @on(Action16.remote_stop_transaction)
    async def on_remote_stop_transaction(self, transaction_id: int) -> result16.RemoteStopTransaction:
        return result16.RemoteStopTransaction(status="Rejected")

    @on(Action16.change_availability)
    async def on_change_availability(self, connector_id: int, type: str) -> result16.ChangeAvailability:
        return result16.ChangeAvailability(status="Accepted")

    @on(Action16.reset)
    async def on_reset(self, type: str) -> result16.Reset:
        return result16.Reset(status="Accepted")

    @on(Action16.unlock_connector)
    async def on_unlock_connector(self, connector_id: int) -> result16.UnlockConnector:
        return result16.UnlockConnector(status="NotSupported")

    @on(Action16.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> result16.DataTransfer:
        return result16.DataTransfer(status="UnknownVendorId")


_VARIABLES: dict[tuple[str, str], str] = {
    ("SmartChargingCtrlr", "RateUnit"): "A,W",
    ("SmartChargingCtrlr", "Enabled"): "true",
    ("SmartChargingCtrlr", "ProfileStackLevel"): "10",
    ("SmartChargingCtrlr", "PeriodsPerSchedule"): "24",
    ("SmartChargingCtrlr", "Entries"): "10",
    ("SampledDataCtrlr", "TxUpdatedInterval"): "10",
    ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
}


def _variables(device: ChargerDevice) -> dict[tuple[str, str], str]:
    quirks: dict[tuple[str, str], str] = {}
    if device.spec.watts_only:
        quirks[("SmartChargingCtrlr", "RateUnit")] = "W"
    if device.spec.stack_level_zero_only:
        quirks[("SmartChargingCtrlr", "ProfileStackLevel")] = "0"
    return {**_VARIABLES, **quirks}


class ChargePoint201(V201ChargePoint):  # type: ignore[misc]
    """The 2.0.1 client side: what the central system may ask a 2.0.1 charging station."""

    def __init__(self, device: ChargerDevice, connection: Any) -> None:
        super().__init__(device.ocpp_id, connection, response_timeout=30)
        self.device = device

    @on(Action201.set_charging_profile)
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **kw: Any
                                      ) -> result201.SetChargingProfile:
        status = self.device.take_profile(lambda now: from_v201(evse_id, charging_profile, now))
        return result201.SetChargingProfile(status=status)

    @on(Action201.clear_charging_profile)
    async def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                        charging_profile_criteria: dict[str, Any] | None = None, **kw: Any
                                        ) -> result201.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        ids = ([charging_profile_id] if charging_profile_id is not None
               else criteria.get("charging_profile_id") or [None])
        found = any([self.device.store.clear(i, criteria.get("evse_id"), criteria.get("charging_profile_purpose"),
                                             criteria.get("stack_level")) for i in ids])
        self.device.control(self.device.physics_now())
        return result201.ClearChargingProfile(status="Accepted" if found else "Unknown")

    @on(Action201.get_composite_schedule)
    async def on_get_composite_schedule(self, duration: int, evse_id: int, **kw: Any
                                        ) -> result201.GetCompositeSchedule:
        c = self.device.composite(duration)
        return result201.GetCompositeSchedule(status="Accepted", schedule={
            "evse_id": evse_id, "duration": duration, "schedule_start": ocpp_time(c["start"]),
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": round(c["limit"], 1)}]})

    @on(Action201.get_variables)
    async def on_get_variables(self, get_variable_data: list[dict[str, Any]], **kw: Any) -> result201.GetVariables:
        results = []
        for item in get_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            value = _variables(self.device).get(key)
            entry: dict[str, Any] = {"attribute_status": "Accepted" if value is not None else "UnknownVariable",
                                     "component": item["component"], "variable": item["variable"]}
            if value is not None:
                entry["attribute_value"] = value
            results.append(entry)
        return result201.GetVariables(get_variable_result=results)

    @on(Action201.set_variables)
    async def on_set_variables(self, set_variable_data: list[dict[str, Any]], **kw: Any) -> result201.SetVariables:
        return result201.SetVariables(set_variable_result=[
            {"attribute_status": "Rejected", "component": i["component"], "variable": i["variable"]}
            for i in set_variable_data])

    @on(Action201.trigger_message)
    async def on_trigger_message(self, requested_message: str, **kw: Any) -> result201.TriggerMessage:
        if requested_message in ("StatusNotification", "MeterValues", "TransactionEvent"):
            if requested_message == "StatusNotification":
                self.device.status_sent = None
            self.device._last_meter = -1e18
            self.device.wake()
            return result201.TriggerMessage(status="Accepted")
        return result201.TriggerMessage(status="NotImplemented")

    @on(Action201.request_start_transaction)
    async def on_request_start_transaction(self, id_token: dict[str, Any], remote_start_id: int, **kw: Any
                                           ) -> result201.RequestStartTransaction:
        return result201.RequestStartTransaction(status="Rejected")

    @on(Action201.request_stop_transaction)
    async def on_request_stop_transaction(self, transaction_id: str, **kw: Any) -> result201.RequestStopTransaction:
        return result201.RequestStopTransaction(status="Rejected")

    @on(Action201.change_availability)
    async def on_change_availability(self, operational_status: str, **kw: Any) -> result201.ChangeAvailability:
        return result201.ChangeAvailability(status="Accepted")

    @on(Action201.reset)
    async def on_reset(self, type: str, **kw: Any) -> result201.Reset:
        return result201.Reset(status="Accepted")

    @on(Action201.unlock_connector)
    async def on_unlock_connector(self, evse_id: int, connector_id: int, **kw: Any) -> result201.UnlockConnector:
        return result201.UnlockConnector(status="UnknownConnector")

    @on(Action201.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> result201.DataTransfer:
        return result201.DataTransfer(status="UnknownVendorId")
