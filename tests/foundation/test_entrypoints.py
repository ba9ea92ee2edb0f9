"""`ampmq run` brings every service online; the embedded broker carries messages for the demo."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.broker import embedded_broker, free_port
from shared.mqtt import OFFLINE, ONLINE
from shared.probe import Probe
from shared.services import SERVICES
from shared.topics import Topics

ROOT = Path(__file__).resolve().parents[2]


async def test_ampmq_run_brings_every_service_online_and_offline_on_stop(mqtt_url: str, probe: Probe,
                                                                         site_id: str) -> None:
    topics = Topics(f"root-{site_id}")  # a root of its own: other tests run services on this broker too
    for name in SERVICES:
        await probe.subscribe(topics.service_availability(name))
    mark = probe.mark()
    env = {**os.environ, "AMPMQ_MQTT_URL": mqtt_url, "AMPMQ_ROOT": topics.root,
           "AMPMQ_OCPP_GATEWAY__HOST": "127.0.0.1", "AMPMQ_OCPP_GATEWAY__PORT": str(free_port())}
    proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for name in SERVICES:
            await probe.expect(topics.service_availability(name), where=lambda m: m.text == ONLINE, after=mark,
                               timeout=30)
        mark = probe.mark()
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
        for name in SERVICES:
            await probe.expect(topics.service_availability(name), where=lambda m: m.text == OFFLINE, after=mark,
                               timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_embedded_broker_carries_retained_messages() -> None:
    async with embedded_broker() as url:
        async with Probe(url) as publisher:
            await publisher.publish("demo/state", "hello", retain=True)
        await asyncio.sleep(0.1)
        async with Probe(url) as late:
            await late.subscribe("demo/#")
            msg = await late.expect("demo/state")
            assert msg.text == "hello" and msg.retain


def _modules_loaded_by(argv: list[str]) -> set[str]:
    """The modules a fresh process has loaded once ``ampmq <argv>`` has parsed its command line and imported
    the service's module, as ``run_services`` does (the service is not started: ``_service_main`` reports)."""
    probe = (
        "import importlib, sys\n"
        "from shared import cli\n"
        "from shared.services import SERVICES\n"
        "cli._service_main = lambda name, config: (importlib.import_module(SERVICES[name]),\n"
        "                                          print(' '.join(sorted(sys.modules))))\n"
        f"cli.main({argv!r})\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "AMPMQ_CONFIG": ""}, check=True).stdout
    return set(out.split())


def test_a_service_process_loads_neither_the_simulator_nor_the_other_commands() -> None:
    """One service per container: the allocator's process imports no Modbus, HTTP or simulator code just to
    parse its command line (20 MB and 0.3 s each, before); ``--config`` before the command is skipped over."""
    loaded = _modules_loaded_by(["--config", "", "allocator"])
    assert "services.allocator.service" in loaded  # (the probe ran the real command line up to the service)
    assert not loaded & {"pymodbus", "aiohttp", "services.site_simulator.cli", "services.allocator.cli",
                         "shared.acl", "shared.health"}


def test_the_help_still_lists_every_command() -> None:
    shown = subprocess.run([sys.executable, "-m", "shared.cli", "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, check=True).stdout
    for command in ("run", *SERVICES, "allocate", "demo", "hash-password", "acl", "health"):
        assert command in shown
