"""The command channel: schema checked before sending, and every failure answered on the result topic."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from shared.clock import ScaledClock
from shared.models import ErrorReport, OcppCommand, OcppResult
from shared.probe import Probe
from shared.topics import Topics
from tests.charge_point_loop import reading

from .conftest import Client16, GatewayFactory, charger, raw_charger
from .test_flow import PROFILE_16


async def _result(probe: Probe, topics: Topics, site: str, cp: str, action: str, mark: int) -> OcppResult:
    return (await probe.expect(topics.charger_result(site, cp, action), after=mark)).model(OcppResult)


async def test_schema_invalid_command_never_reaches_the_charger(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"CP1": {"site": site_id}}) as gateway, charger(gateway, "CP1") as cp:
        await probe.expect(topics.charger_availability(site_id, "cp1"), where=lambda m: m.text == "online")
        bad = {"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1}}  # most of the profile missing
        mark = probe.mark()
        await probe.publish(topics.charger_command(site_id, "cp1", "SetChargingProfile"),
                            OcppCommand(request_id="bad-1", payload=bad))
        result = await _result(probe, topics, site_id, "cp1", "SetChargingProfile", mark)
        assert (result.ok, result.error, result.request_id) == (False, "schema", "bad-1")
        report = await probe.expect(topics.errors(site_id), after=mark, where=lambda m: m.json()["error"] == "schema")
        assert report.model(ErrorReport).service == "ocpp-gateway"
        # a valid command afterwards is the first thing the charger ever receives
        mark = probe.mark()
        await probe.publish(topics.charger_command(site_id, "cp1", "SetChargingProfile"),
                            OcppCommand(request_id="good-1", payload=PROFILE_16))
        assert (await _result(probe, topics, site_id, "cp1", "SetChargingProfile", mark)).ok
        assert [name for name, _ in cp.received] == ["SetChargingProfile"]
        assert cp.received[0][1]["cs_charging_profiles"]["charging_profile_id"] == 7


async def test_offline_unknown_action_rejected_and_invalid_command(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"CP1": {"site": site_id}, "CP2": {"site": site_id}}) as gateway:
        mark = probe.mark()
        await probe.publish(topics.charger_command(site_id, "cp2", "Reset"),
                            OcppCommand(request_id="o-1", payload={"type": "Soft"}))
        offline = await _result(probe, topics, site_id, "cp2", "Reset", mark)
        assert (offline.ok, offline.error) == (False, "offline")

        async with charger(gateway, "CP1") as cp:
            await probe.expect(topics.charger_availability(site_id, "cp1"), where=lambda m: m.text == "online")
            mark = probe.mark()
            await probe.publish(topics.charger_command(site_id, "cp1", "BootNotification"),
                                OcppCommand(request_id="u-1", payload={}))
            unknown = await _result(probe, topics, site_id, "cp1", "BootNotification", mark)
            assert (unknown.ok, unknown.error) == (False, "unknown_action")
            # 2.0.1's name for remote start is not a 1.6 action
            await probe.publish(topics.charger_command(site_id, "cp1", "RequestStartTransaction"),
                                OcppCommand(request_id="u-2", payload={}))
            assert (await _result(probe, topics, site_id, "cp1", "RequestStartTransaction", mark)).error == \
                "unknown_action"

            cp.answer_status = "Rejected"
            mark = probe.mark()
            await probe.publish(topics.charger_command(site_id, "cp1", "SetChargingProfile"),
                                OcppCommand(request_id="rj-1", payload=PROFILE_16))
            rejected = await _result(probe, topics, site_id, "cp1", "SetChargingProfile", mark)
            assert (rejected.ok, rejected.error, rejected.response) == (False, "rejected", {"status": "Rejected"})

            # a charger without a handler answers with a CALLERROR (the ocpp library's NotImplemented): call_error
            mark = probe.mark()
            await probe.publish(topics.charger_command(site_id, "cp1", "Reset"),
                                OcppCommand(request_id="ce-1", payload={"type": "Soft"}))
            call_error = await _result(probe, topics, site_id, "cp1", "Reset", mark)
            assert (call_error.ok, call_error.error) == (False, "call_error")
            assert call_error.response is not None and call_error.response["errorCode"] == "NotImplemented"

            mark = probe.mark()
            await probe.publish(topics.charger_command(site_id, "cp1", "GetConfiguration"),
                                OcppCommand(request_id="gc-1", payload={"key": ["HeartbeatInterval"]}))
            config = await _result(probe, topics, site_id, "cp1", "GetConfiguration", mark)
            assert config.ok and config.response == {"configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}

            # a command payload that is not an OcppCommand is reported, not executed
            mark = probe.mark()
            await probe.publish(topics.charger_command(site_id, "cp1", "Reset"), {"payload": {"type": "Hard"}})
            report = await probe.expect(topics.errors(site_id), after=mark)
            assert report.model(ErrorReport).error == "validation"


async def test_silent_charger_times_out_and_other_commands_still_run(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    chargers = {"MUTE": {"site": site_id}, "CP1": {"site": site_id}}
    async with run_gateway(chargers=chargers, max_pending_commands=1) as gateway, charger(gateway, "CP1") as cp, \
            raw_charger(gateway, "MUTE") as mute:
        await probe.expect(topics.charger_availability(site_id, "cp1"), where=lambda m: m.text == "online")
        mark = probe.mark()
        await probe.publish(topics.charger_command(site_id, "mute", "Reset"),
                            OcppCommand(request_id="t-1", payload={"type": "Soft"}, timeout=0.5))
        await probe.publish(topics.charger_command(site_id, "mute", "ClearCache"),
                            OcppCommand(request_id="t-busy", payload={}))
        await probe.publish(topics.charger_command(site_id, "cp1", "SetChargingProfile"),
                            OcppCommand(request_id="t-2", payload=PROFILE_16))
        assert (await _result(probe, topics, site_id, "cp1", "SetChargingProfile", mark)).ok
        busy = await _result(probe, topics, site_id, "mute", "ClearCache", mark)
        assert (busy.ok, busy.error, busy.request_id) == (False, "busy", "t-busy")
        timed_out = await _result(probe, topics, site_id, "mute", "Reset", mark)
        assert (timed_out.ok, timed_out.error) == (False, "timeout")
        report = await probe.expect(topics.errors(site_id), after=mark, where=lambda m: m.json()["error"] == "timeout")
        assert "t-1" in report.model(ErrorReport).message
        sent = json.loads(await mute.recv())
        assert sent[0] == 2 and sent[2] == "Reset" and sent[3] == {"type": "Soft"}
        assert cp.received


async def test_a_commands_timeout_runs_on_the_gateways_clock(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    """In a simulated day at 100x, a 30 s command timeout set by an adapter on that clock is 0.3 s of real
    time for the gateway too (it was 30 real seconds, while the adapter had long given the command up)."""
    await probe.subscribe(topics.site_all(site_id))
    fast = ScaledClock(datetime(2026, 6, 1, 12, tzinfo=UTC), speed=100.0)
    async with run_gateway(clock=fast, chargers={"MUTE": {"site": site_id}}) as gateway, \
            raw_charger(gateway, "MUTE") as mute:
        await probe.expect(topics.charger_availability(site_id, "mute"), where=lambda m: m.text == "online")
        mark = probe.mark()
        await probe.publish(topics.charger_command(site_id, "mute", "Reset"),
                            OcppCommand(request_id="s-1", payload={"type": "Soft"}, timeout=30))
        assert json.loads(await mute.recv())[2] == "Reset"  # sent, and never answered
        timed_out = await _result(probe, topics, site_id, "mute", "Reset", mark)  # within the probe's 5 s
        assert (timed_out.ok, timed_out.error, timed_out.request_id) == (False, "timeout", "s-1")


async def test_a_command_waiting_on_a_charger_that_goes_away_is_answered_offline(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"GONE": {"site": site_id}}) as gateway:
        async with raw_charger(gateway, "GONE") as gone:
            await probe.expect(topics.charger_availability(site_id, "gone"), where=lambda m: m.text == "online")
            mark = probe.mark()
            await probe.publish(topics.charger_command(site_id, "gone", "Reset"),
                                OcppCommand(request_id="g-1", payload={"type": "Hard"}, timeout=60))
            assert json.loads(await gone.recv())[2] == "Reset"  # it arrived; the charger never answers
        result = await _result(probe, topics, site_id, "gone", "Reset", mark)  # long before the 60 s timeout
        assert (result.ok, result.error, result.request_id) == (False, "offline", "g-1")


class IgnoresDataTransfer(Client16):
    """A 1.6 charge point that takes its charging profiles but never answers a DataTransfer (a vendor
    extension it does not implement and silently drops): the case of a hung command."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection)
        self.arrived: list[tuple[str, str]] = []  # (action, message id) of every CALL, in arrival order

    async def route_message(self, raw_msg: str | bytes) -> None:
        frame = json.loads(raw_msg)
        if frame[0] == 2:
            self.arrived.append((frame[2], frame[3].get("messageId", "")))
            if frame[2] == "DataTransfer":
                return  # never answered
        await super().route_message(raw_msg)


async def test_a_charging_profile_overtakes_commands_waiting_behind_a_hung_one(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    """Issue 13.7: a DataTransfer the charger never answers held every profile behind it for its 30 s
    timeout (and a queued second one for 30 s more). Now the command's default timeout is short and the
    profile goes before the waiting DataTransfer: it reaches the charger once the one in flight gives up,
    long before that DataTransfer's old 30 s were over. The gateway runs at 5x so the 5 s are 1 s here."""
    await probe.subscribe(topics.site_all(site_id))
    fast = ScaledClock(datetime.now(UTC), speed=5.0)
    async with run_gateway(clock=fast, chargers={"CP1": {"site": site_id}}) as gateway:
        ws = await connect(f"{gateway.url}/CP1", subprotocols=[Subprotocol("ocpp1.6")], open_timeout=5)
        cp = IgnoresDataTransfer("CP1", ws)
        async with reading(cp, ws):
            await probe.expect(topics.charger_availability(site_id, "cp1"), where=lambda m: m.text == "online")
            mark = probe.mark()
            for n in (1, 2):  # no timeout given: the gateway's default
                await probe.publish(topics.charger_command(site_id, "cp1", "DataTransfer"), {
                    "request_id": f"dt-{n}", "payload": {"vendorId": "com.example", "messageId": f"dt-{n}"}})
            while not cp.arrived:
                await asyncio.sleep(0.01)
            await probe.publish(topics.charger_command(site_id, "cp1", "SetChargingProfile"),
                                OcppCommand(request_id="cut", payload=PROFILE_16))
            # within 30 s of gateway time (6 s here): the old timeout of the DataTransfer in flight alone
            result = await probe.expect(topics.charger_result(site_id, "cp1", "SetChargingProfile"), after=mark,
                                        timeout=30 / fast.speed)
            assert (result.model(OcppResult).ok, result.model(OcppResult).request_id) == (True, "cut")
            assert cp.arrived[:2] == [("DataTransfer", "dt-1"), ("SetChargingProfile", "")]
            first = await _result(probe, topics, site_id, "cp1", "DataTransfer", mark)
            assert (first.request_id, first.error) == ("dt-1", "timeout")


async def test_a_sites_cut_leaves_every_chargers_socket_pushed(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    """The frames the gateway sends in one turn of its loop (a site's cut: a profile for each charger) are
    held in their sockets (TCP_CORK) to the turn's end and then pushed: both chargers get their profile, and
    neither socket is left corked afterwards (the kernel would hold the next frame up to 200 ms)."""
    await probe.subscribe(topics.site_all(site_id))
    chargers = {"CP1": {"site": site_id}, "CP2": {"site": site_id}}
    async with run_gateway(chargers=chargers) as gateway, charger(gateway, "CP1") as one, \
            charger(gateway, "CP2") as two:
        corks, held = gateway.context.corks, []
        hold = corks.hold

        def holding(sock: Any) -> None:
            if not isinstance(sock, socket.socket):  # (the gateway's own MQTT socket is held in the same turn)
                held.append(sock)
            hold(sock)

        corks.hold = holding  # type: ignore[method-assign]
        for cp in ("cp1", "cp2"):
            await probe.expect(topics.charger_availability(site_id, cp), where=lambda m: m.text == "online")
        mark = probe.mark()
        for cp in ("cp1", "cp2"):
            await probe.publish(topics.charger_command(site_id, cp, "SetChargingProfile"),
                                OcppCommand(request_id=f"cut-{cp}", payload=PROFILE_16))
        for cp in ("cp1", "cp2"):
            result = await _result(probe, topics, site_id, cp, "SetChargingProfile", mark)
            assert (result.ok, result.request_id) == (True, f"cut-{cp}")
        assert [[action for action, _ in cp.received] for cp in (one, two)] == [["SetChargingProfile"]] * 2
        assert len(held) == 2 and held[0] is not held[1], "each frame went through the turn's cork"
        for cp in ("cp1", "cp2"):
            session = gateway.registry.get(cp)
            assert session is not None
            sock = session.connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0, f"{cp}'s socket left corked"
