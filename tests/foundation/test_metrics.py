# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""Prometheus metrics: every service serves ``/metrics``, and the series move as a small site runs.

The four services run as the compose deployment runs them — one process each, each with its own endpoint —
here as four service runners in this process, each with its own exporter and port, against the test broker.
A real OCPP 1.6 charge point (the ``ocpp`` library's) talks to the gateway, a plain MQTT switch is the load,
and the meter is an MQTT JSON source. Each endpoint is scraped over HTTP and parsed with prometheus_client's
own parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from ocpp.v16 import call as call16
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from shared.broker import Mosquitto, free_port
from shared.config import AmpmqConfig
from shared.metrics import Exporter
from shared.probe import Probe
from shared.services import run_services
from shared.topics import Topics
from tests.charge_point_loop import reading
from tests.gateway.conftest import Client16
from tests.load_adapters.conftest import FAST
from tests.load_adapters.devices import PlainSwitch

T = Topics()
ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def no_ampmq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config built here is the whole config: no AMPMQ_* variable may leak into it."""
    import os

    for key in [k for k in os.environ if k.startswith("AMPMQ_")]:
        monkeypatch.delenv(key)


async def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and labels (parsed by prometheus_client's own parser)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def families(text: str) -> set[str]:
    """The ampmq family names in an exposition (counters without ``_total``, as the parser names them)."""
    return {f.name for f in text_string_to_metric_families(text) if f.name.startswith("ampmq_")}


def documented() -> set[str]:
    """The series docs/metrics.md lists, named as their families are."""
    names = re.findall(r"^\| `(ampmq_\w+)`", (ROOT / "docs" / "metrics.md").read_text(), re.MULTILINE)
    return {name.removesuffix("_total") for name in names}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly these labels (KeyError naming what there is when absent)."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        near = sorted(str(dict(k[1])) for k in samples if k[0] == name)
        raise KeyError(f"{name} {labels} not exposed; {name} has: {near}")
    return samples[key]


def find(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly these labels, None when there is none."""
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every sample carrying at least these labels."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def service_process(config: AmpmqConfig, name: str) -> AsyncIterator[Exporter]:
    """One service as its own runner with its own exporter, as in its own container."""
    exporter = Exporter()
    task = asyncio.get_running_loop().create_task(run_services(config, [name], exporter=exporter))
    try:
        await asyncio.wait_for(exporter.listening.wait(), 10)
        yield exporter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def suite_config(mqtt_url: str, site: str, ocpp_port: int) -> AmpmqConfig:
    grid, pump = f"meters/{site}/grid", f"garage/{site}/pump"
    phases = [{"topic": grid, "path": key, "unit": "A", "phase": n} for n, key in ((1, "a"), (2, "b"), (3, "c"))]
    return AmpmqConfig(
        mqtt_url=mqtt_url,
        metrics={"port": 0},
        allocator={"settle": 0.2, "home_assistant": False, "sites": {site: {"fuse_limit": 25.0, "margin": 1.0}}},
        meter_bridge={"sites": {site: {"coalesce": 0.0, "sources": [
            {"id": "grid", "driver": "mqtt_json", "values": phases}]}}},
        load_adapters={"loads": [{"type": "mqtt_switch", "site": site, "id": "pump", "command_topic": f"{pump}/set",
                                  "state_topic": f"{pump}/state", "state_field": "state",
                                  "power": {"topic": f"{pump}/state", "field": "power"}, "phases": ["L2"], **FAST}]},
        ocpp_gateway={"host": "127.0.0.1", "port": ocpp_port, "chargers": {"cp-1": {"site": site, "auth": "none"}}},
    )


async def test_every_service_serves_metrics_that_move_with_the_site(mqtt_url: str, probe: Probe, site_id: str) -> None:
    site = site_id
    ocpp_port = free_port()
    config = suite_config(mqtt_url, site, ocpp_port)
    grid = f"meters/{site}/grid"
    await probe.subscribe(T.site_all(site))
    async with contextlib.AsyncExitStack() as stack:
        ports = {}
        for name in ("allocator", "meter-bridge", "load-adapters", "ocpp-gateway"):
            exporter = await stack.enter_async_context(service_process(config, name))
            assert exporter.port is not None
            ports[name] = exporter.port
        switch = await stack.enter_async_context(PlainSwitch(mqtt_url, f"garage/{site}/pump", load_w=2300.0))

        async def scraped(name: str) -> Samples:
            status, text = await scrape(ports[name])
            assert status == 200
            return parse(text)

        async def all_online() -> bool:
            return all([(await scrape(port, "/health"))[0] == 200 for port in ports.values()])

        await until(all_online, what="every service's /health says online")
        exposed = set().union(*[families((await scrape(port))[1]) for port in ports.values()])
        assert exposed == documented(), "docs/metrics.md lists every series the services expose, and no other"
        first = {name: await scraped(name) for name in ports}
        for name, samples in first.items():
            assert value(samples, "ampmq_mqtt_connected", service=name) == 1.0
            assert value(samples, "ampmq_mqtt_reconnects_total", service=name) == 0.0

        # a measurement (12 A on A, nothing of the switch there) and the switch's state -> a setpoint; it goes on
        await probe.publish(grid, json.dumps({"a": 12.0, "b": 3.0, "c": 2.0}))
        await probe.expect(T.setpoint(site, "pump"), where=lambda m: m.json()["on"] is True, timeout=15)
        await switch.wait_for(lambda: switch.output)

        async def allocator_saw(amps: float) -> bool:
            samples = await scraped("allocator")
            phase_a = {"service": "allocator", "site": site, "phase": "A"}
            return (find(samples, "ampmq_site_current_amperes", **phase_a) == amps
                    and find(samples, "ampmq_site_headroom_amperes", **phase_a) == pytest.approx(24.0 - amps))

        await until(lambda: allocator_saw(12.0), what="the allocator's gauges show 12 A on A, 12 A headroom")
        # a malformed payload -> an error report (and a rejected message) from the allocator
        await probe.publish(T.site_settings_set(site), "{not json")
        await probe.expect(T.errors(site), where=lambda m: m.json()["error"] == "validation", timeout=10)
        # an implausible reading -> rejected by the meter bridge
        await probe.publish(grid, json.dumps({"a": 10_000.0, "b": 3.0, "c": 2.0}))
        await probe.expect(T.errors(site), where=lambda m: m.json()["error"] == "implausible", timeout=10)
        # a charger connects and boots; a command through MQTT reaches it
        ws = await connect(f"ws://127.0.0.1:{ocpp_port}/ocpp/cp-1", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           open_timeout=5)
        client = Client16("cp-1", ws)
        async with reading(client, ws):
            await client.call(call16.BootNotification(charge_point_model="m", charge_point_vendor="v"))
            await probe.publish(T.charger_command(site, "cp-1", "GetConfiguration"),
                                json.dumps({"request_id": "r1", "payload": {}}))
            await probe.expect(T.charger_result(site, "cp-1", "GetConfiguration"), timeout=10)
            # the meter moves: 20 A on A, the headroom follows
            await probe.publish(grid, json.dumps({"a": 20.0, "b": 3.0, "c": 2.0}))
            await until(lambda: allocator_saw(20.0), what="the allocator's gauges show 20 A on A, 4 A headroom")
            second = {name: await scraped(name) for name in ports}
            gateway = second["ocpp-gateway"]
            assert value(gateway, "ampmq_ocpp_chargers_connected", service="ocpp-gateway", version="1.6") == 1.0

        allocator, bridge, adapters = second["allocator"], second["meter-bridge"], second["load-adapters"]
        before = first["allocator"]
        # the allocator: decisions counted, timed, by reason; the error report by its code
        assert value(allocator, "ampmq_allocator_decisions_total", service="allocator", site=site) > \
            total(before, "ampmq_allocator_decisions_total", site=site)
        assert value(allocator, "ampmq_allocator_decision_seconds_count", service="allocator") > \
            total(before, "ampmq_allocator_decision_seconds_count")
        assert value(allocator, "ampmq_allocator_setpoints_total", service="allocator", reason="ok") > 0
        assert value(allocator, "ampmq_site_loads", service="allocator", site=site, reason="ok") == 1.0
        assert value(allocator, "ampmq_site_limit_amperes", service="allocator", site=site, phase="B") == 24.0
        assert value(allocator, "ampmq_error_reports_total", service="allocator", code="validation") == 1.0
        assert value(allocator, "ampmq_mqtt_messages_rejected_total", service="allocator") > \
            value(before, "ampmq_mqtt_messages_rejected_total", service="allocator")
        assert value(allocator, "ampmq_mqtt_messages_received_total", service="allocator") > \
            value(before, "ampmq_mqtt_messages_received_total", service="allocator")
        assert value(allocator, "ampmq_mqtt_messages_published_total", service="allocator") > \
            value(before, "ampmq_mqtt_messages_published_total", service="allocator")
        # the meter bridge: readings accepted and rejected, measurements published
        labels = {"service": "meter-bridge", "site": site, "source": "grid"}
        assert value(first["meter-bridge"], "ampmq_meter_readings_total", **labels, result="accepted") == 0.0
        assert value(bridge, "ampmq_meter_readings_total", **labels, result="accepted") >= 2.0
        assert value(bridge, "ampmq_meter_readings_total", **labels, result="rejected") == 1.0
        assert value(bridge, "ampmq_meter_source_online", **labels) == 1.0
        assert value(bridge, "ampmq_meter_measurements_published_total", service="meter-bridge", site=site) >= 2.0
        assert value(bridge, "ampmq_error_reports_total", service="meter-bridge", code="implausible") == 1.0
        # the load adapters: the switch command sent, the device heard
        pump = {"service": "load-adapters", "site": site, "load": "pump"}
        assert value(adapters, "ampmq_load_commands_total", **pump) > \
            value(first["load-adapters"], "ampmq_load_commands_total", **pump)  # (the switch went on since)
        assert value(adapters, "ampmq_load_available", service="load-adapters", site=site, load="pump") == 1.0
        # the gateway: the charger's BootNotification in, the GetConfiguration command out
        assert value(gateway, "ampmq_ocpp_calls_total", service="ocpp-gateway", direction="from_charger",
                     action="BootNotification") == 1.0
        assert value(gateway, "ampmq_ocpp_calls_total", service="ocpp-gateway", direction="to_charger",
                     action="GetConfiguration") == 1.0
        # every service: the process's own series too, and no inbox trouble on a small site
        for name, samples in second.items():
            assert total(samples, "process_resident_memory_bytes") > 0, name
            assert value(samples, "ampmq_inbox_refused_total", service=name) == 0.0


async def test_services_in_one_process_share_one_endpoint_and_health_names_who_is_offline(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    """``ampmq run``: every service behind the one port, told apart by the ``service`` label; ``/health`` is
    200 only while every one of them is connected to the broker."""
    config = suite_config(mqtt_url, site_id, free_port())
    async with service_process(config, "allocator") as exporter:
        assert exporter.port is not None
        port = exporter.port
        # a second runner's services (another process in real life) register with their own exporter only
        async with service_process(config, "meter-bridge") as other:
            assert other.port != port

            async def online() -> bool:
                return (await scrape(port, "/health"))[0] == 200

            await until(online, what="/health online")
            samples = parse((await scrape(port))[1])
            assert value(samples, "ampmq_mqtt_connected", service="allocator") == 1.0
            assert {dict(labels).get("service") for _, labels in samples} == {None, "allocator"}  # not this process's

    both = Exporter()
    unreachable = config.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{free_port()}"})
    task = asyncio.get_running_loop().create_task(run_services(unreachable, ["allocator", "load-adapters"],
                                                               exporter=both))
    try:
        await asyncio.wait_for(both.listening.wait(), 10)
        assert both.port is not None
        await until(lambda: _registered(both, 2), what="both services registered")
        samples = parse((await scrape(both.port))[1])
        assert value(samples, "ampmq_mqtt_connected", service="allocator") == 0.0
        assert value(samples, "ampmq_mqtt_connected", service="load-adapters") == 0.0
        assert value(samples, "ampmq_load_available", service="load-adapters", site=site_id, load="pump") == 0.0
        status, text = await scrape(both.port, "/health")
        assert status == 503
        assert "allocator: offline" in text and "load-adapters: offline" in text
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_broker_restart_shows_as_a_reconnect(own_mosquitto: type[Mosquitto], site_id: str) -> None:
    broker = own_mosquitto().start()
    config = suite_config(broker.url, site_id, free_port())
    async with service_process(config, "meter-bridge") as exporter:
        assert exporter.port is not None
        port = exporter.port

        async def connected(reconnects: float) -> bool:
            samples = parse((await scrape(port))[1])
            return (value(samples, "ampmq_mqtt_connected", service="meter-bridge") == 1.0
                    and value(samples, "ampmq_mqtt_reconnects_total", service="meter-bridge") == reconnects)

        await until(lambda: connected(0.0), what="connected, no reconnect yet")
        broker.restart()
        await until(lambda: connected(1.0), what="connected again, one reconnect counted")


async def _registered(exporter: Exporter, count: int) -> bool:
    return len(exporter.services) >= count


def test_metrics_are_off_unless_a_port_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import load_config

    assert not load_config().metrics.enabled
    monkeypatch.setenv("AMPMQ_METRICS__PORT", "9100")
    monkeypatch.setenv("AMPMQ_METRICS__HOST", "0.0.0.0")
    config = load_config()
    assert config.metrics.enabled and config.metrics.port == 9100 and config.metrics.host == "0.0.0.0"


def test_the_grafana_dashboard_queries_only_documented_series() -> None:
    dashboard = json.loads((ROOT / "examples" / "grafana" / "ampmq.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    names = [name for query in queries for name in re.findall(r"ampmq_\w+", query)]
    used = {name.removesuffix("_total").removesuffix("_bucket") for name in names}
    assert used <= documented(), used - documented()
    for wanted in ("ampmq_site_current_amperes", "ampmq_site_limit_amperes", "ampmq_site_headroom_amperes",
                   "ampmq_allocator_decision_seconds", "ampmq_allocator_setpoints", "ampmq_mqtt_reconnects",
                   "ampmq_error_reports"):
        assert wanted in used, f"the dashboard graphs {wanted}"
