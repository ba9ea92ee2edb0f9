"""Availability that tells the truth with several instances of a service (issue 15, item 4): a stopped standby
never knocks out a healthy instance, a false ``offline`` is answered with ``online``, and entries left by
instances that died without a goodbye do not keep the service ``online`` after the last one stops."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from shared.availability import OFFLINE, ONLINE, instance_id
from shared.mqtt import Runtime, serving
from shared.probe import Probe
from shared.topics import Topics

ROOT = Path(__file__).resolve().parents[2]


async def test_a_standby_that_stops_leaves_the_healthy_instance_online(mqtt_url: str, site_id: str) -> None:
    topics = Topics(f"t-{site_id}")
    service_topic = topics.service_availability("ocpp-gateway")
    async with Probe(mqtt_url) as probe:
        await probe.subscribe(service_topic)
        await probe.subscribe(topics.service_instances_filter("ocpp-gateway"))
        active = Runtime("ocpp-gateway", mqtt_url, topics)
        async with serving(active):
            standby = Runtime("ocpp-gateway", mqtt_url, topics)
            async with serving(standby):
                standby_entry = standby.availability.instance_topic
                await probe.expect(standby_entry, where=lambda m: m.text == ONLINE)
                await asyncio.sleep(0.2)
                mark = probe.mark()
            # the standby stopped cleanly: its entry is gone, the service never said offline
            await probe.expect(standby_entry, after=mark, where=lambda m: m.payload == b"")
            await asyncio.sleep(0.5)
            assert [m.text for m in probe.on(service_topic, after=mark)] == []
            assert active.availability.peers == {}
            mark = probe.mark()
        # the last instance stops: now the service is offline
        await probe.expect(service_topic, after=mark, where=lambda m: m.text == OFFLINE)


async def test_a_false_offline_from_a_dead_instance_is_answered_and_its_entry_cleared(
        mqtt_url: str, site_id: str) -> None:
    topics = Topics(f"t-{site_id}")
    service_topic = topics.service_availability("load-adapters")
    script = textwrap.dedent(f"""
        import asyncio
        from shared.mqtt import Runtime
        from shared.topics import Topics
        async def main():
            runtime = Runtime("load-adapters", {mqtt_url!r}, Topics({topics.root!r}))
            print(runtime.availability.instance, flush=True)
            await runtime.run()
        asyncio.run(main())
    """)
    async with Probe(mqtt_url) as probe:
        await probe.subscribe(service_topic)
        await probe.subscribe(topics.service_instances_filter("load-adapters"))
        survivor = Runtime("load-adapters", mqtt_url, topics)
        async with serving(survivor):
            other = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
            try:
                assert other.stdout is not None
                other_id = (await asyncio.to_thread(other.stdout.readline)).strip()
                other_entry = topics.service_instance("load-adapters", other_id)
                await probe.expect(other_entry, where=lambda m: m.text == ONLINE, timeout=15)
                for _ in range(100):
                    if other_id in survivor.availability.peers:
                        break
                    await asyncio.sleep(0.02)
                mark = probe.mark()
                other.send_signal(signal.SIGKILL)  # no goodbye: its Last Will says the service is offline
                other.wait(5)
            finally:
                if other.poll() is None:
                    other.kill()
            await probe.expect(service_topic, after=mark, where=lambda m: m.text == OFFLINE)
            await probe.expect(service_topic, after=mark, where=lambda m: m.text == ONLINE)  # the survivor answers
            # the dead instance's entry does not outlive the roll call
            await probe.expect(other_entry, after=mark, where=lambda m: m.payload == b"", timeout=5)
            assert survivor.availability.peers == {}
            mark = probe.mark()
        # so the survivor, the last one, stops with the service offline (no ghost keeps it online)
        await probe.expect(service_topic, after=mark, where=lambda m: m.text == OFFLINE)


async def test_a_ghost_entry_does_not_keep_a_stopped_service_online(mqtt_url: str, site_id: str) -> None:
    topics = Topics(f"t-{site_id}")
    service_topic = topics.service_availability("allocator")
    ghost = topics.service_instance("allocator", instance_id("ampmq-allocator-gone-host-1-1"))
    async with Probe(mqtt_url) as probe:
        await probe.publish(ghost, ONLINE, retain=True)  # left by an instance that died long ago
        await probe.subscribe(service_topic)
        await probe.subscribe(ghost)
        runtime = Runtime("allocator", mqtt_url, topics)
        async with serving(runtime):
            for _ in range(100):
                if runtime.availability.peers:
                    break
                await asyncio.sleep(0.02)
            assert list(runtime.availability.peers) == [ghost.rsplit("/", 1)[1]]
            mark = probe.mark()
        # nobody answered the roll call: the ghost is cleared and the service is offline
        await probe.expect(ghost, after=mark, where=lambda m: m.payload == b"")
        await probe.expect(service_topic, after=mark, where=lambda m: m.text == OFFLINE)


def test_instance_ids_are_topic_ids() -> None:
    assert instance_id("ampmq-ocpp-gateway-My_Host.local-4242-1") == "ampmq-ocpp-gateway-my-host-local-4242-1"
    assert len(instance_id("x" * 200)) == 64
    assert instance_id("___") == "instance"
