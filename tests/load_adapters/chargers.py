"""Real OCPP charge points (the ``ocpp`` library's client side, 1.6J and 2.0.1) over real websockets,
recording every call the central system sends them as the raw OCPP JSON they received, and keeping the
charging profiles they accept as the standard says (the simulator's :class:`ProfileStore`: in 1.6 a
profile with the same id, or the same purpose and stack level, replaces the one held anywhere on the
charge point; a clear removes what matches every criterion given)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import connect

from services.site_simulator.profiles import ProfileError, ProfileStore, from_v16, from_v201
from tests.charge_point_loop import reading


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Recording:
    """The raw CALLs a charge point received: ``[(action, payload), ...]``."""

    calls: list[tuple[str, dict[str, Any]]]

    def record(self, raw: str | bytes) -> None:
        frame = json.loads(raw)
        if frame[0] == 2:
            self.calls.append((frame[2], frame[3]))

    def of(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.calls if name == action]

    async def wait_call(self, action: str, where: Any = None, after: int = 0, timeout: float = 8.0) -> dict[str, Any]:
        """The first ``action`` call (from index ``after`` of :attr:`calls`) satisfying ``where``."""

        async def poll() -> dict[str, Any]:
            while True:
                for name, payload in self.calls[after:]:
                    if name == action and (where is None or where(payload)):
                        return payload
                await asyncio.sleep(0.02)

        try:
            return await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            seen = [(n, p) for n, p in self.calls[after:] if n == action]
            raise AssertionError(f"no matching {action} within {timeout}s; got {seen[-4:]}") from None

    def mark(self) -> int:
        return len(self.calls)


class Charger16(ChargePoint16, Recording):
    def __init__(self, cp_id: str, connection: Any, rate_unit: str = "Current") -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.calls = []
        self.rate_unit = rate_unit
        #: Answer this many SetChargingProfile calls with Rejected.
        self.reject_profiles = 0
        self.store = ProfileStore(rating=32.0)

    async def route_message(self, raw_msg: str | bytes) -> None:
        self.record(raw_msg)
        await super().route_message(raw_msg)

    @on(Action16.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **kw: Any
                                ) -> result16.SetChargingProfile:
        if self.reject_profiles > 0:
            self.reject_profiles -= 1
            return result16.SetChargingProfile(status="Rejected")
        try:
            self.store.install(from_v16(connector_id, cs_charging_profiles, datetime.now(UTC)))
        except ProfileError:
            return result16.SetChargingProfile(status="Rejected")
        return result16.SetChargingProfile(status="Accepted")

    @on(Action16.clear_charging_profile)
    def on_clear_charging_profile(self, **kw: Any) -> result16.ClearChargingProfile:
        found = self.store.clear(kw.get("id"), kw.get("connector_id"), kw.get("charging_profile_purpose"),
                                 kw.get("stack_level"))
        return result16.ClearChargingProfile(status="Accepted" if found else "Unknown")

    @on(Action16.get_configuration)
    def on_get_configuration(self, **kw: Any) -> result16.GetConfiguration:
        return result16.GetConfiguration(configuration_key=[
            {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": self.rate_unit}])

    @on(Action16.reset)
    def on_reset(self, **kw: Any) -> result16.Reset:
        return result16.Reset(status="Accepted")

    async def boot(self) -> None:
        await self.call(call16.BootNotification(charge_point_vendor="Test", charge_point_model="Wallbox-16"))

    async def start_transaction(self, meter_start: int, connector: int = 1, id_tag: str = "tag-1") -> int:
        answer = await self.call(call16.StartTransaction(connector_id=connector, id_tag=id_tag,
                                                         meter_start=meter_start, timestamp=now_iso()))
        return int(answer.transaction_id)

    async def stop_transaction(self, transaction_id: int, meter_stop: int) -> None:
        await self.call(call16.StopTransaction(meter_stop=meter_stop, timestamp=now_iso(),
                                               transaction_id=transaction_id, reason="EVDisconnected"))

    async def status(self, status: str, connector: int = 1) -> None:
        await self.call(call16.StatusNotification(connector_id=connector, error_code="NoError", status=status,
                                                  timestamp=now_iso()))

    async def meter(self, connector: int = 1, *, legs: dict[str, float] | None = None,
                    offered: float | None = None, soc: float | None = None, energy_wh: float | None = None) -> None:
        samples: list[dict[str, Any]] = [
            {"value": f"{amps:.1f}", "measurand": "Current.Import", "phase": leg, "unit": "A"}
            for leg, amps in (legs or {}).items()]
        if energy_wh is not None:
            samples.append({"value": f"{energy_wh:.0f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"})
        if offered is not None:
            samples.append({"value": f"{offered:.1f}", "measurand": "Current.Offered", "unit": "A"})
        if soc is not None:
            samples.append({"value": f"{soc:.0f}", "measurand": "SoC", "unit": "Percent"})
        await self.call(call16.MeterValues(connector_id=connector,
                                           meter_value=[{"timestamp": now_iso(), "sampled_value": samples}]))


class Charger201(ChargePoint201, Recording):
    def __init__(self, cp_id: str, connection: Any, rate_unit: str = "A,W") -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.calls = []
        self.rate_unit = rate_unit
        self.store = ProfileStore(rating=32.0, per_evse=True)

    async def route_message(self, raw_msg: str | bytes) -> None:
        self.record(raw_msg)
        await super().route_message(raw_msg)

    @on(Action201.set_charging_profile)
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **kw: Any
                                ) -> result201.SetChargingProfile:
        try:
            self.store.install(from_v201(evse_id, charging_profile, datetime.now(UTC)))
        except ProfileError:
            return result201.SetChargingProfile(status="Rejected")
        return result201.SetChargingProfile(status="Accepted")

    @on(Action201.clear_charging_profile)
    def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                  charging_profile_criteria: dict[str, Any] | None = None, **kw: Any
                                  ) -> result201.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        found = self.store.clear(charging_profile_id, criteria.get("evse_id"),
                                 criteria.get("charging_profile_purpose"), criteria.get("stack_level"))
        return result201.ClearChargingProfile(status="Accepted" if found else "Unknown")

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **kw: Any) -> result201.GetVariables:
        return result201.GetVariables(get_variable_result=[
            {"attribute_status": "Accepted", "attribute_value": self.rate_unit,
             "component": d["component"], "variable": d["variable"]} for d in get_variable_data])

    @on(Action201.reset)
    def on_reset(self, **kw: Any) -> result201.Reset:
        return result201.Reset(status="Accepted")

    async def boot(self) -> None:
        await self.call(call201.BootNotification(
            charging_station={"model": "Wallbox-201", "vendor_name": "Test"}, reason="PowerUp"))

    async def status(self, status: str, evse: int = 1) -> None:
        await self.call(call201.StatusNotification(timestamp=now_iso(), connector_status=status, evse_id=evse,
                                                   connector_id=1))

    async def transaction(self, event: str, charging_state: str, evse: int = 1, tx: str = "tx-1", *,
                          id_token: str | None = None, energy_wh: float | None = None,
                          stopped_reason: str | None = None) -> None:
        info: dict[str, Any] = {"transaction_id": tx, "charging_state": charging_state}
        if stopped_reason is not None:
            info["stopped_reason"] = stopped_reason
        extra: dict[str, Any] = {}
        if id_token is not None:
            extra["id_token"] = {"id_token": id_token, "type": "ISO14443"}
        if energy_wh is not None:
            extra["meter_value"] = [{"timestamp": now_iso(), "sampled_value": [
                {"value": energy_wh, "measurand": "Energy.Active.Import.Register", "unit_of_measure": {"unit": "Wh"}}]}]
        await self.call(call201.TransactionEvent(
            event_type=event, timestamp=now_iso(), trigger_reason="ChargingStateChanged", seq_no=1,
            transaction_info=info, evse={"id": evse}, **extra))

    async def meter(self, evse: int = 1, *, legs: dict[str, float] | None = None,
                    offered: float | None = None) -> None:
        samples: list[dict[str, Any]] = [
            {"value": amps, "measurand": "Current.Import", "phase": leg, "unit_of_measure": {"unit": "A"}}
            for leg, amps in (legs or {}).items()]
        if offered is not None:
            samples.append({"value": offered, "measurand": "Current.Offered", "unit_of_measure": {"unit": "A"}})
        await self.call(call201.MeterValues(evse_id=evse,
                                            meter_value=[{"timestamp": now_iso(), "sampled_value": samples}]))


@contextlib.asynccontextmanager
async def charge_point(url: str, cp_id: str, version: str = "1.6", **options: Any) -> AsyncIterator[Any]:
    """A connected charge point with its reading loop running."""
    ws = await connect(f"{url}/{cp_id}", subprotocols=[f"ocpp{version}"], open_timeout=5)  # type: ignore[list-item]
    client: Any = Charger16(cp_id, ws, **options) if version == "1.6" else Charger201(cp_id, ws, **options)
    async with reading(client, ws):
        yield client
