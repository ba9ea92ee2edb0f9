"""The example Node-RED flow (examples/node-red/ampmq-flow.json) in a real Node-RED (4.x, with Dashboard 2),
deployed through its admin API and driving a real ampmq: the allocator, the load adapters and the OCPP gateway
in-process, a real OCPP 1.6 charge point on a websocket. ``make test`` installs Node-RED (``npm ci`` in
tests/node_red)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.allocator.service import running as allocator
from shared.broker import free_port
from shared.config import AmpmqConfig
from shared.models import SiteMeasurement
from shared.models.base import utcnow
from shared.models.measurement import CurrentReading
from shared.probe import Probe
from tests.load_adapters.chargers import charge_point
from tests.load_adapters.conftest import FAST_CHARGER, T, ocpp_gateway, running

HERE = Path(__file__).resolve().parent
RED = HERE / "node_modules" / "node-red" / "red.js"
FLOW = HERE.parents[1] / "examples" / "node-red" / "ampmq-flow.json"
TIMERS = {"min_interval": 0.05, "refresh": 0.5, "stale_after": 60.0, "min_run": 0.0, "min_pause": 0.0,
          "grace": 0.0, "setpoint_lifetime": 30.0, "ramp_step": 100.0}


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 15.0) -> tuple[int, Any]:
    """One HTTP request: the status and the JSON (or text) it answered."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    text = raw.decode()
    with contextlib.suppress(ValueError):
        return status, json.loads(text)
    return status, text


def flow_for(mqtt_url: str) -> list[dict[str, Any]]:
    """The example flow with its broker node pointed at the test's broker."""
    address = urlsplit(mqtt_url)
    if address.scheme not in ("mqtt", "tcp"):
        pytest.skip(f"the flow test speaks plain MQTT; the broker is {address.scheme}://")
    flow: list[dict[str, Any]] = json.loads(FLOW.read_text())
    [broker] = [n for n in flow if n["type"] == "mqtt-broker"]
    broker.update(broker=address.hostname, port=str(address.port or 1883))
    if address.username:
        broker["credentials"] = {"user": address.username, "password": address.password or ""}
    return flow


@contextlib.asynccontextmanager
async def node_red(mqtt_url: str) -> AsyncIterator[str]:
    """A Node-RED on a free port with a user directory of its own, the example flow deployed: its base URL."""
    node = shutil.which("node")
    if node is None or not RED.is_file():
        pytest.fail("the Node-RED flow test needs node and tests/node_red/node_modules: run `make test` "
                    "(it runs `npm ci` in tests/node_red)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="ampmq-node-red-") as user_dir:
        log = Path(user_dir) / "node-red.log"
        with log.open("wb") as out:
            process = subprocess.Popen([node, str(RED), "--settings", str(HERE / "settings.js"), "--userDir",
                                        user_dir, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
        try:
            for _ in range(300):  # the admin API answers once the runtime is up (a few seconds)
                if process.poll() is not None:
                    raise AssertionError(f"Node-RED exited: {log.read_text()[-2000:]}")
                with contextlib.suppress(OSError):
                    if (await asyncio.to_thread(http, "GET", f"{base}/settings", timeout=1.0))[0] == 200:
                        break
                await asyncio.sleep(0.1)
            status, answer = await asyncio.to_thread(http, "POST", f"{base}/flows", flow_for(mqtt_url),
                                                     {"Node-RED-Deployment-Type": "full"})
            assert status in (200, 204), answer
            yield base
            assert "[error]" not in log.read_text(), log.read_text()[-2000:]
        finally:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


class Dashboard:
    """A Dashboard 2 client as the browser's starts: socket.io (Engine.IO 4) over HTTP long-polling on the
    dashboard's socket path (the dashboard refuses a bare websocket). :meth:`change` is what the page sends
    when a control changes. Blocking calls: run them in a thread."""

    def __init__(self, base: str) -> None:
        self.url = f"{base}/dashboard/socket.io/?EIO=4&transport=polling"
        self.sid = ""

    def _call(self, data: str | None = None) -> str:
        url = f"{self.url}&sid={self.sid}" if self.sid else self.url
        request = urllib.request.Request(url, data=data.encode() if data is not None else None,
                                         method="POST" if data is not None else "GET",
                                         headers={"Content-Type": "text/plain;charset=UTF-8"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.read().decode())

    def open(self) -> Dashboard:
        opened = self._call()
        assert opened.startswith("0"), opened  # Engine.IO open: {"sid": ...}
        self.sid = json.loads(opened[1:])["sid"]
        self._call("40")  # socket.io: join the default namespace
        assert self._call().startswith("40")
        return self

    def change(self, widget: str, value: Any) -> None:
        self._call("42" + json.dumps(["widget-change", widget, value]))


async def until(what: str, check: Any, timeout: float = 15.0) -> Any:
    """Poll ``check`` (a blocking call, run in a thread) until it returns something true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.2)


def settings_url(base: str, site: str, load: str) -> str:
    """The flow's HTTP endpoint that changes one load's settings (an URL, not a topic)."""
    return "/".join((base, "ampmq", site, "load", load, "settings"))


def live_limit(payload: dict[str, Any]) -> float | None:
    """The limit of the adapter's live profile (id 11) in a 1.6 SetChargingProfile, else None."""
    profile = payload["csChargingProfiles"]
    if profile["chargingProfileId"] != 11:
        return None
    return float(profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])


async def test_the_flow_changes_a_mode_to_a_charging_profile_and_matches_a_rejection(
        mqtt_url: str, probe: Probe, site_id: str) -> None:
    """Issue 17: a mode change sent through the flow's HTTP endpoint, and one from its dashboard's mode dropdown,
    reach the charger as a charging profile; a bad value comes back as the allocator's error report, matched to
    its request by transaction."""
    load = "carport"
    config = AmpmqConfig(mqtt_url=mqtt_url, allocator={
        "settle": 0.3, "serve_only": [site_id], "discovery_prefix": f"ha-{site_id}",
        "sites": {site_id: {"fuse_limit": 25.0, "margin": 1.0, "timers": TIMERS}}})
    now = utcnow()
    await probe.publish(T.measurement(site_id), SiteMeasurement(site=site_id, ts=now, grid_current={
        p: CurrentReading(ts=now, value=4.0) for p in ("A", "B", "C")}), retain=True)
    charger = {"type": "ocpp_charger", "site": site_id, "id": load, "charger": "cp-a", **FAST_CHARGER,
               "lifetime": 30.0, "renew_every": 10.0}
    try:
        async with (
            ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gateway,
            running(mqtt_url, [charger]),
            allocator(config),
            charge_point(gateway.url, "CP-A") as cp,
            node_red(mqtt_url) as base,
        ):
            await cp.boot()
            await cp.status("Charging")
            await cp.start_transaction(meter_start=0)
            await cp.meter(legs={"L1": 10.0, "L2": 10.0, "L3": 10.0}, energy_wh=100)
            await cp.wait_call("SetChargingProfile", where=lambda p: (live_limit(p) or 0.0) >= 6.0, timeout=15)

            def knows_the_load() -> Any:
                loads = http("GET", f"{base}/ampmq/state")[1]["loads"]
                return loads.get(f"{site_id}/{load}", {}).get("settings")

            await until("the flow hears the load's settings", knows_the_load)
            mark = cp.mark()
            status, answer = await asyncio.to_thread(
                http, "POST", settings_url(base, site_id, load), {"mode": "off"})
            assert status == 200, answer
            assert answer["ok"] is True and answer["settings"]["mode"] == "off"
            assert answer["settings"]["transaction"] == answer["transaction"]
            off = await cp.wait_call("SetChargingProfile", where=lambda p: live_limit(p) == 0.0, after=mark,
                                     timeout=10)
            assert off["connectorId"] == 1

            # the dashboard's controls: choose the load, then its mode (what the page sends on a change)
            mark = cp.mark()
            page = await asyncio.to_thread(Dashboard(base).open)
            await asyncio.to_thread(page.change, "ampmq-ctl-load", f"{site_id}/{load}")
            await asyncio.to_thread(page.change, "ampmq-ctl-mode", "standard")
            await cp.wait_call("SetChargingProfile", where=lambda p: (live_limit(p) or 0.0) >= 6.0, after=mark,
                               timeout=10)
            await until("the flow shows the mode set from the dashboard",
                        lambda: knows_the_load().get("mode") == "standard")

            status, answer = await asyncio.to_thread(
                http, "POST", settings_url(base, site_id, load), {"priority": 0})
            assert status == 422, answer
            assert answer["ok"] is False and answer["request"] == {"priority": 0}
            error = answer["error"]
            assert error["transaction"] == answer["transaction"] and error["error"] == "validation"
            assert "priority" in error["message"]
            log = (await asyncio.to_thread(http, "GET", f"{base}/ampmq/errors"))[1]
            assert [(e["transaction"], json.loads(e["request"])) for e in log if e["transaction"]] == [
                (answer["transaction"], {"priority": 0})]
    finally:
        await probe.publish(T.measurement(site_id), None, retain=True)
