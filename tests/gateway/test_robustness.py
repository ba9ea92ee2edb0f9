# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""Bad frames, dead sockets, oversized messages and reconnects: answered per OCPP-J, reported, contained."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from services.ocpp_gateway.config import GatewayConfig
from services.ocpp_gateway.gateway import Gateway
from services.ocpp_gateway.session import REPORT_WINDOW, REPORTS_PER_CHARGER
from shared.models import ErrorReport
from shared.mqtt import Runtime, serving
from shared.probe import Probe, Received
from shared.topics import Topics

from .conftest import GatewayFactory, SteppedClock, charger, raw_charger


def _error_is(error: str) -> Callable[[Received], bool]:
    return lambda m: bool(m.json()["error"] == error)


async def _answer(ws: ClientConnection, frame: str | bytes) -> list[object]:
    await ws.send(frame)
    answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert isinstance(answer, list)
    return answer


async def test_garbage_frames_get_callerrors_and_others_are_unaffected(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    chargers = {"BAD16": {"site": site_id}, "BAD201": {"site": site_id}, "GOOD": {"site": site_id}}
    async with run_gateway(chargers=chargers) as gateway, charger(gateway, "GOOD") as good, \
            raw_charger(gateway, "BAD16") as bad16, raw_charger(gateway, "BAD201", "ocpp2.0.1") as bad201:
        mark = probe.mark()
        cases_16: list[tuple[str | bytes, str, str]] = [
            ("this is not json", "-1", "FormationViolation"),
            ('{"an": "object"}', "-1", "FormationViolation"),
            ('[2, 17, "Heartbeat", {}]', "-1", "FormationViolation"),
            ('[7, "m1", "Heartbeat", {}]', "m1", "GenericError"),
            ('[2, "m2", "Heartbeat"]', "m2", "FormationViolation"),
            ('[2, "m3", "NoSuchAction", {}]', "m3", "NotImplemented"),  # OCPP-J: "not known by receiver"
            ('[2, "m4", "Reset", {"type": "Soft"}]', "m4", "NotSupported"),  # known, but the other direction
            ('[2, "m5", "BootNotification", {"chargePointVendor": 5, "chargePointModel": "M"}]', "m5",
             "TypeConstraintViolation"),
            ('[2, "m6", "StatusNotification", {"connectorId": 1}]', "m6", "ProtocolError"),
            # schema-valid, but outside what the contract can carry: refused, not crashed
            ('[2, "m7", "StatusNotification", {"connectorId": 999, "errorCode": "NoError", "status": "Available"}]',
             "m7", "PropertyConstraintViolation"),
            (b"\x00\x01binary", "-1", "FormationViolation"),
        ]
        for frame, unique_id, code in cases_16:
            answer = await _answer(bad16, frame)
            assert answer[:3] == [4, unique_id, code], (frame, answer)
        cases_201: list[tuple[str | bytes, str, str]] = [
            ("{{{", "-1", "RpcFrameworkError"),
            ('[9, "n1", "Heartbeat", {}]', "n1", "MessageTypeNotSupported"),
            ('[2, "n2", "NoSuchAction", {}]', "n2", "NotImplemented"),
            ('[2, "n3", "BootNotification", {"reason": "PowerUp"}]', "n3", "ProtocolError"),
        ]
        for frame, unique_id, code in cases_201:
            answer = await _answer(bad201, frame)
            assert answer[:3] == [4, unique_id, code], (frame, answer)
        # a stray CALLRESULT is reported but never answered; the next CALL still is
        await bad16.send('[3, "nobody-asked", {}]')
        answer = await _answer(bad16, '[2, "h1", "Heartbeat", {}]')
        assert answer[0] == 3 and answer[1] == "h1" and "currentTime" in answer[2]  # type: ignore[operator]

        for error in ("malformed_frame", "call_rejected", "unexpected_response", "invalid_value"):
            report = await probe.expect(topics.errors(site_id), after=mark, where=_error_is(error))
            assert report.model(ErrorReport).service == "ocpp-gateway"
        # the well-behaved charger was served all along
        booted = await good.call(call16.BootNotification(charge_point_vendor="A", charge_point_model="B"))
        assert booted.status == "Accepted"
        await probe.expect(topics.charger_boot(site_id, "good"))


async def test_a_charger_spewing_garbage_is_answered_but_reported_in_moderation(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.errors(site_id))
    clock = SteppedClock()
    chargers = {"NOISY": {"site": site_id}, "CALM": {"site": site_id}}
    async with run_gateway(chargers=chargers, clock=clock) as gateway, charger(gateway, "CALM") as calm, \
            raw_charger(gateway, "NOISY") as noisy:
        mark = probe.mark()
        for i in range(REPORTS_PER_CHARGER + 30):
            assert (await _answer(noisy, f'[2, "n{i}", "NoSuchAction", {{}}]'))[:3] == [4, f"n{i}", "NotImplemented"]
        assert (await calm.call(call16.Heartbeat())).current_time
        clock.seconds += REPORT_WINDOW
        await _answer(noisy, "garbage")
        summary = await probe.expect(topics.errors(site_id), after=mark,
                                     where=_error_is("reports_suppressed"))
        assert "30 more problems" in summary.json()["message"]
        await probe.expect(topics.errors(site_id), after=mark, where=_error_is("malformed_frame"))
        assert len([m for m in probe.on(topics.errors(site_id), after=mark)
                    if m.json()["error"] == "call_rejected"]) == REPORTS_PER_CHARGER


async def test_killed_charger_goes_offline(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"CP1": {"site": site_id}}) as gateway, charger(gateway, "CP1", "2.0.1") as cp:
        await cp.call(call201.Heartbeat())
        await probe.expect(topics.charger_heartbeat(site_id, "cp1"))
        mark = probe.mark()
        cp._connection.transport.abort()  # the charger dies: no close frame, the TCP connection just drops
        await probe.expect(topics.charger_availability(site_id, "cp1"), after=mark, where=lambda m: m.text == "offline")
        event = await probe.expect(topics.charger_event(site_id, "cp1", "disconnected"), after=mark)
        assert event.json()["data"]["reason"] == "connection lost"
        assert gateway.registry.get("cp1") is None


async def test_oversized_message_closes_only_that_charger(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"BIG": {"site": site_id}, "OK": {"site": site_id}},
                           max_message_bytes=4096) as gateway, charger(gateway, "OK") as ok:
        async with raw_charger(gateway, "BIG") as big:
            await probe.expect(topics.charger_availability(site_id, "big"), where=lambda m: m.text == "online")
            mark = probe.mark()
            huge = json.dumps([2, "x1", "DataTransfer", {"vendorId": "v", "data": "A" * 10_000}])
            await big.send(huge)
            try:
                await asyncio.wait_for(big.recv(), 5)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1009
            report = await probe.expect(topics.errors(site_id), after=mark)
            assert report.model(ErrorReport).error == "oversized_message"
            await probe.expect(topics.charger_availability(site_id, "big"), after=mark,
                               where=lambda m: m.text == "offline")
        assert (await ok.call(call16.Heartbeat())).current_time


async def test_reconnect_replaces_the_old_session(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"CP1": {"site": site_id}}) as gateway, charger(gateway, "CP1") as first:
        first_session = gateway.registry.get("cp1")
        async with charger(gateway, "CP1") as second:
            await asyncio.wait_for(first._connection.wait_closed(), 5)
            assert first._connection.close_code == 1000
            assert gateway.registry.get("cp1") is not first_session
            assert (await second.call(call16.Heartbeat())).current_time
            await probe.expect(topics.charger_heartbeat(site_id, "cp1"))  # published after everything before it
            availability = probe.on(topics.charger_availability(site_id, "cp1"))
            assert availability and availability[-1].text == "online"
        await probe.expect(topics.charger_availability(site_id, "cp1"),
                           where=lambda m: m.text == "offline")


async def test_stopping_the_gateway_marks_every_charger_offline(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.all())
    names = ["A1", "B2", "C3"]
    async with run_gateway(chargers={n: {"site": site_id} for n in names}) as gateway:
        clients = [charger(gateway, n, "2.0.1" if i % 2 else "1.6") for i, n in enumerate(names)]
        for c in clients:
            await c.__aenter__()
        for n in names:
            await probe.expect(topics.charger_availability(site_id, n.lower()), where=lambda m: m.text == "online")
        mark = probe.mark()
    for n in names:
        await probe.expect(topics.charger_availability(site_id, n.lower()), after=mark,
                           where=lambda m: m.text == "offline")
    await probe.expect(topics.service_availability("ocpp-gateway"), after=mark, where=lambda m: m.text == "offline")
    for c in clients:
        await c.__aexit__(None, None, None)


async def test_state_comes_back_after_the_broker_loses_it(own_mosquitto: type, site_id: str, topics: Topics) -> None:
    broker = own_mosquitto().start()  # persistence off: a restart forgets every retained message
    runtime = Runtime("ocpp-gateway", broker.url, Topics(), backoff_initial=0.1, backoff_max=0.5)
    config = GatewayConfig.model_validate({"host": "127.0.0.1", "port": 0,
                                           "chargers": {"CP1": {"site": site_id, "auth": "none"}}})
    gateway = Gateway(config, runtime)
    async with serving(runtime), gateway.running(), charger(gateway, "CP1") as cp:
        await cp.call(call16.BootNotification(charge_point_vendor="Acme", charge_point_model="M"))
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        await gateway.outbox.drain()
        broker.restart()
        await runtime.wait_connected(10)
        async with Probe(broker.url) as fresh:
            await fresh.subscribe(topics.site_all(site_id))
            await fresh.expect(topics.charger_availability(site_id, "cp1"), where=lambda m: m.text == "online")
            assert (await fresh.expect(topics.charger_boot(site_id, "cp1"))).json()["vendor"] == "Acme"
            assert (await fresh.expect(topics.connector_status(site_id, "cp1", 1))).json()["status"] == "Charging"
