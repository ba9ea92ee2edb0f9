# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""The service as ``ampmq`` runs it (``serve(config)``), and wss:// with HTTP Basic auth (security profile 2)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from ocpp.v16 import call as call16
from websockets.asyncio.client import connect

from services.ocpp_gateway.passwords import hash_password
from services.ocpp_gateway.service import serve
from shared import acl
from shared.broker import Mosquitto, free_port
from shared.config import AmpmqConfig
from shared.models import ChargerBoot, ErrorReport, OcppCommand, OcppResult
from shared.probe import Probe
from shared.topics import Topics

from .conftest import Client16, GatewayFactory, basic_auth
from .test_flow import PROFILE_16


async def test_serve_runs_the_gateway_until_cancelled(mqtt_url: str, probe: Probe, site_id: str,
                                                      topics: Topics) -> None:
    await probe.subscribe(topics.all())
    port = free_port()
    config = AmpmqConfig(mqtt_url=mqtt_url, ocpp_gateway={"host": "127.0.0.1", "port": port,
                                                          "chargers": {"SVC": {"site": site_id, "auth": "none"}}})
    service = asyncio.get_running_loop().create_task(serve(config))
    try:
        await probe.expect(topics.service_availability("ocpp-gateway"), where=lambda m: m.text == "online")
        for _ in range(100):  # the websocket server comes up right after MQTT
            with contextlib.suppress(OSError):
                ws = await connect(f"ws://127.0.0.1:{port}/SVC", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
                break
            await asyncio.sleep(0.05)
        client = Client16("SVC", ws)
        reader = asyncio.get_running_loop().create_task(client.start())
        await client.call(call16.BootNotification(charge_point_vendor="A", charge_point_model="B"))
        await probe.expect(topics.charger_boot(site_id, "svc"))
        mark = probe.mark()
    finally:
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service
    await probe.expect(topics.charger_availability(site_id, "svc"), after=mark, where=lambda m: m.text == "offline")
    await probe.expect(topics.service_availability("ocpp-gateway"), after=mark, where=lambda m: m.text == "offline")
    reader.cancel()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS test needs the openssl command to make a throwaway certificate")
    cert, key = tmp_path / "gateway.crt", tmp_path / "gateway.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    return cert, key


async def test_tls_with_basic_auth(run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics,
                                   certificate: tuple[Path, Path]) -> None:
    await probe.subscribe(topics.site_all(site_id))
    cert, key = certificate
    chargers = {"SECURE": {"site": site_id, "password_hash": hash_password("tls and a password", n=2**10)}}
    async with run_gateway(chargers=chargers, tls_cert=str(cert), tls_key=str(key)) as gateway:
        assert gateway.url.startswith("wss://")
        trust = ssl.create_default_context(cafile=str(cert))
        async with connect(f"{gateway.url}/SECURE", ssl=trust, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           additional_headers=basic_auth("SECURE", "tls and a password")) as ws:
            client = Client16("SECURE", ws)
            reader = asyncio.get_running_loop().create_task(client.start())
            answer = await client.call(call16.BootNotification(charge_point_vendor="Sec", charge_point_model="M"))
            assert answer.status == "Accepted"
            assert (await probe.expect(topics.charger_boot(site_id, "secure"))).model(ChargerBoot).vendor == "Sec"
            reader.cancel()
        # plain ws:// to a TLS port does not get through
        with pytest.raises(Exception):  # noqa: B017 - the handshake fails in whichever way the transport sees it
            async with connect(gateway.url.replace("wss://", "ws://") + "/SECURE", open_timeout=3):
                pass


async def test_a_taken_port_is_reported_and_retried(mqtt_url: str, probe: Probe, site_id: str,
                                                    topics: Topics) -> None:
    await probe.subscribe(topics.service_errors("ocpp-gateway"))
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    config = AmpmqConfig(mqtt_url=mqtt_url, ocpp_gateway={"host": "127.0.0.1", "port": port,
                                                          "chargers": {"LATE": {"site": site_id, "auth": "none"}}})
    service = asyncio.get_running_loop().create_task(serve(config))
    try:
        report = await probe.expect(topics.service_errors("ocpp-gateway"), timeout=10,
                                    where=lambda m: m.json()["error"] == "listen_failed")
        assert str(port) in report.json()["message"]
        assert not service.done()  # the service lives on, and MQTT with it
        squatter.close()
        for _ in range(100):
            with contextlib.suppress(OSError):
                async with connect(f"ws://127.0.0.1:{port}/LATE", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                    assert ws.subprotocol == "ocpp1.6"
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the gateway never came up once the port was free")
    finally:
        squatter.close()
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service


async def test_the_gateway_works_behind_the_generated_acl(own_mosquitto: type[Mosquitto], site_id: str,
                                                          topics: Topics) -> None:
    users = {name: f"pw-{name}" for name in ("ocpp-gateway", "load-adapters", acl.OPERATOR)}
    port = free_port()
    config = AmpmqConfig(ocpp_gateway={"host": "127.0.0.1", "port": port,
                                       "chargers": {"ACL-CP": {"site": site_id, "auth": "none"}}},
                         load_adapters={"loads": [{"type": "ocpp_charger", "site": site_id, "id": "car",
                                                   "charger": "acl-cp", "connector": 1}]})
    broker = own_mosquitto(users=users, acl=acl.render(config).splitlines()).start()  # the ACL of this config
    config = config.model_copy(update={"mqtt_url": broker.url_for("ocpp-gateway")})
    service = asyncio.get_running_loop().create_task(serve(config))
    async with Probe(broker.url_for("load-adapters")) as adapter, Probe(broker.url_for(acl.OPERATOR)) as operator:
        await operator.subscribe(topics.all())
        await operator.expect(topics.service_availability("ocpp-gateway"), where=lambda m: m.text == "online")
        try:
            ws = None
            for _ in range(100):
                with contextlib.suppress(OSError):
                    ws = await connect(f"ws://127.0.0.1:{port}/ACL-CP", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
                    break
                await asyncio.sleep(0.05)
            assert ws is not None
            client = Client16("ACL-CP", ws)
            reader = asyncio.get_running_loop().create_task(client.start())
            await client.call(call16.BootNotification(charge_point_vendor="A", charge_point_model="B"))
            await operator.expect(topics.charger_boot(site_id, "acl-cp"))
            await adapter.publish(topics.charger_command(site_id, "acl-cp", "SetChargingProfile"),
                                  OcppCommand(request_id="acl-1", payload=PROFILE_16))
            result = await operator.expect(topics.charger_result(site_id, "acl-cp", "SetChargingProfile"))
            assert result.model(OcppResult).ok
            await adapter.publish(topics.charger_command(site_id, "acl-cp", "SetChargingProfile"),
                                  OcppCommand(request_id="acl-2", payload={"connectorId": 1}))
            report = (await operator.expect(topics.errors(site_id))).model(ErrorReport)
            assert report.error == "schema"
            reader.cancel()
            await ws.close()
        finally:
            service.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await service
