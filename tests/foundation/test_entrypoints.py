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
