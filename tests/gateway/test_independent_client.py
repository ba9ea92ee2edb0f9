"""End to end with an independent OCPP implementation: npm ``ocpp-rpc`` in strict mode validates every call
and answer against the OCPP schemas, so a mistake the gateway shares with the Python ``ocpp`` library
cannot hide. ``make test`` installs it (``tests/js/node_modules``)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from services.ocpp_gateway.passwords import hash_password
from shared.models import ChargerBoot, ConnectorMeter, ConnectorStatus, Leg, OcppCommand, OcppResult, TransactionState
from shared.probe import Probe
from shared.topics import Topics

from .conftest import GatewayFactory
from .test_flow import PROFILE_16, PROFILE_201

JS_DIR = Path(__file__).resolve().parents[1] / "js"


class JsCharger:
    """The node charge point as a subprocess, read one JSON event line at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, endpoint: str, identity: str, protocol: str, password: str | None = None) -> JsCharger:
        node = shutil.which("node")
        if node is None or not (JS_DIR / "node_modules" / "ocpp-rpc").is_dir():
            pytest.fail("the independent OCPP client needs node and tests/js/node_modules: run `make test` "
                        "(it runs `npm ci` in tests/js)")
        args = [str(JS_DIR / "charger.js"), endpoint, identity, protocol, *([password] if password else [])]
        process = await asyncio.create_subprocess_exec(
            node, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=JS_DIR)
        return cls(process)

    async def expect(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            if not line:
                stderr = await self.process.stderr.read() if self.process.stderr else b""
                raise AssertionError(f"node charger ended before {event!r}: {self.events[-3:]} "
                                     f"{stderr.decode()[-2000:]}")
            message: dict[str, Any] = json.loads(line)
            self.events.append(message)
            if message["event"] == "error":
                raise AssertionError(f"node charger failed: {message}")
            if message["event"] == event:
                return message

    async def quit(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(b"quit\n")
        await self.process.stdin.drain()
        return await asyncio.wait_for(self.process.wait(), 10)

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@pytest.mark.parametrize(("protocol", "password"), [("ocpp1.6", "js secret 16"), ("ocpp2.0.1", None)])
async def test_independent_charger_end_to_end(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics, protocol: str, password: str | None
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    entry: dict[str, Any] = {"site": site_id}
    if password:
        entry["password_hash"] = hash_password(password, n=2**10)
    async with run_gateway(chargers={"JS-CP": entry}) as gateway:
        node = await JsCharger.start(f"{gateway.url}/ocpp", "JS-CP", protocol, password)
        try:
            connected = await node.expect("connected")
            assert connected["protocol"] == protocol
            ready = await node.expect("ready")
            assert ready["boot"]["status"] == "Accepted"
            assert ready["authorized"]["idTagInfo" if protocol == "ocpp1.6" else "idTokenInfo"]["status"] == "Accepted"

            boot = (await probe.expect(topics.charger_boot(site_id, "js-cp"))).model(ChargerBoot)
            assert (boot.vendor, boot.model, boot.firmware) == ("IndependentJS", "StrictBox", "9.9.9")
            status = (await probe.expect(topics.connector_status(site_id, "js-cp", 1))).model(ConnectorStatus)
            assert status.status == ("Charging" if protocol == "ocpp1.6" else "Occupied")
            tx = (await probe.expect(topics.connector_transaction(site_id, "js-cp", 1))).model(TransactionState)
            assert tx.state == "started" and tx.id_tag == "JS-TAG"
            meter = (await probe.expect(topics.connector_meter(site_id, "js-cp", 1))).model(ConnectorMeter)
            assert meter.current_import == {Leg.L1: 12.5, Leg.L2: 12.0, Leg.L3: 11.5}
            assert (meter.current_offered, meter.power, meter.energy_wh) == (16.0, 8280.0, 2250.0)

            profile = PROFILE_16 if protocol == "ocpp1.6" else PROFILE_201
            mark = probe.mark()
            await probe.publish(topics.charger_command(site_id, "js-cp", "SetChargingProfile"),
                                OcppCommand(request_id="js-1", payload=profile))
            call = await node.expect("call")
            assert (call["method"], call["params"]) == ("SetChargingProfile", profile)
            result = (await probe.expect(topics.charger_result(site_id, "js-cp", "SetChargingProfile"),
                                         after=mark)).model(OcppResult)
            assert (result.ok, result.request_id, result.response) == (True, "js-1", {"status": "Accepted"})

            payload: dict[str, Any]
            if protocol == "ocpp1.6":
                action, payload = "GetConfiguration", {"key": ["HeartbeatInterval"]}
            else:
                action, payload = "GetVariables", {"getVariableData": [
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}
            await probe.publish(topics.charger_command(site_id, "js-cp", action),
                                OcppCommand(request_id="js-2", payload=payload))
            assert (await node.expect("call"))["method"] == action
            answered = (await probe.expect(topics.charger_result(site_id, "js-cp", action), after=mark)).model(
                OcppResult)
            assert answered.ok and answered.response is not None

            mark = probe.mark()
            assert await node.quit() == 0
            await probe.expect(topics.charger_availability(site_id, "js-cp"), after=mark,
                               where=lambda m: m.text == "offline")
        finally:
            node.kill()
