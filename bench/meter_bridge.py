"""Meter bridge benchmark: Shelly Pro 3EM payloads in, SiteMeasurements out, through a private Mosquitto.

Figures, each beside a floor measured in the same run on the same broker:

* ``latency``: one payload published, the measurement carrying it received (p50/p99), against the raw
  MQTT publish→receive round trip (``floor_latency``), with the ratio.
* ``throughput``: a burst of payloads over several sites (coalescing off, so every payload gives a
  measurement): measurements per second out, against raw MQTT messages per second through the broker.
* ``coalesced_burst``: the same burst on one site with the default 100 ms coalescing: how many
  measurements went out (and that the last one carries the last payload).

The bridge, the publishers and the receivers share one event loop (2-core machines): the ratio is what
the bridge adds on top of the broker round trip, including its own QoS 1 publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from services.meter_bridge.bridge import MeterBridge
from services.meter_bridge.config import MeterBridgeConfig
from services.meter_bridge.service import SERVICE
from shared.broker import Mosquitto
from shared.clock import SYSTEM_CLOCK
from shared.mqtt import BrokerAddress, Runtime
from shared.probe import Probe
from shared.topics import Topics

from . import floors
from .stats import ratio, summary_ms

TOPICS = Topics()


@contextlib.asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[Runtime]:
    """Like ``shared.mqtt.serving``, but cancels until the runtime has stopped (a cancellation can be
    taken for a lost connection when the client's disconnect fails)."""
    task = asyncio.get_running_loop().create_task(runtime.run())
    try:
        await runtime.wait_connected(10)
        yield runtime
    finally:
        await runtime.close()
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1)


def shelly_status(amps: float) -> bytes:
    return json.dumps({
        "id": 0, "a_current": amps, "a_voltage": 230.0, "a_act_power": amps * 230.0,
        "b_current": 1.0, "b_voltage": 231.0, "b_act_power": -231.0,
        "c_current": 2.0, "c_voltage": 229.0, "c_act_power": 458.0, "total_act_power": amps * 230.0 + 227.0,
    }).encode()


def current_a(payload: bytes) -> float | None:
    reading = json.loads(payload).get("grid_current", {}).get("A")
    return None if reading is None else float(reading["value"])


def site_config(sites: list[str], coalesce: float) -> MeterBridgeConfig:
    return MeterBridgeConfig.model_validate({"sites": {
        site: {"coalesce": coalesce, "stale_after": 600,
               "sources": [{"id": "grid", "driver": "shelly", "prefix": f"bench/{site}"}]}
        for site in sites
    }})


async def raw_throughput(url: str, count: int) -> float:
    """Messages per second from one client to another through the broker (qos 0 in, counted out)."""
    address = BrokerAddress.parse(url)
    received = 0
    done = asyncio.Event()
    async with address.client(f"bench-rx-{uuid.uuid4().hex[:6]}") as rx, \
            address.client(f"bench-tx-{uuid.uuid4().hex[:6]}") as tx:
        await rx.subscribe("bench/raw/#", qos=1)

        async def read() -> None:
            nonlocal received
            async for _ in rx.messages:
                received += 1
                if received >= count:
                    done.set()
                    return

        reader = asyncio.get_running_loop().create_task(read())
        started = time.perf_counter()
        for i in range(count):
            await tx.publish(f"bench/raw/{i % 4}", shelly_status(float(i % 100)), qos=0)
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - started
        reader.cancel()
    return count / elapsed


async def bridge_latency(url: str, samples: int) -> dict[str, float]:
    site = "bench-latency"
    runtime = Runtime(SERVICE, url, TOPICS)
    MeterBridge(site_config([site], coalesce=0.0), runtime, SYSTEM_CLOCK).install()
    durations = []
    # Sender and receiver are two clients, as for the floor: one client doing both would have its next
    # publish held back by Nagle's algorithm behind its own PUBACK.
    async with running(runtime), Probe(url) as probe, Probe(url) as sender:
        await probe.subscribe(TOPICS.measurement(site))
        for i in range(samples):
            amps = float(i % 50) + 1.0 + (i % 7) / 10
            mark = probe.mark()
            started = time.perf_counter()
            await sender.publish(f"bench/{site}/status/em:0", shelly_status(amps), qos=0)
            await probe.expect(TOPICS.measurement(site), after=mark, timeout=5,
                               where=lambda m, a=amps: current_a(m.payload) == a)  # type: ignore[misc]
            durations.append(time.perf_counter() - started)
    return summary_ms(durations)


async def bridge_burst(url: str, count: int, sites: list[str], coalesce: float) -> dict[str, Any]:
    """Publish ``count`` payloads round-robin over ``sites``; wait for each site's last one to come out."""
    runtime = Runtime(SERVICE, url, TOPICS)
    MeterBridge(site_config(sites, coalesce), runtime, SYSTEM_CLOCK).install()
    address = BrokerAddress.parse(url)
    final = {site: 200.25 + n for n, site in enumerate(sites)}  # every site's last payload
    waiting = set(sites)
    out = 0
    done = asyncio.Event()
    async with running(runtime), address.client(f"bench-rx-{uuid.uuid4().hex[:6]}") as rx, \
            address.client(f"bench-tx-{uuid.uuid4().hex[:6]}") as tx:
        await rx.subscribe(TOPICS.measurement_filter(), qos=1)

        async def read() -> None:
            nonlocal out
            async for message in rx.messages:
                if message.retain:
                    continue
                out += 1
                site = TOPICS.parse(str(message.topic)).site
                payload = message.payload if isinstance(message.payload, bytes) else b"{}"
                if site in waiting and current_a(payload) == final[site]:
                    waiting.discard(site)
                    if not waiting:
                        done.set()
                        return

        reader = asyncio.get_running_loop().create_task(read())
        started = time.perf_counter()
        per_site = count // len(sites)
        for i in range(per_site):
            for site in sites:
                amps = final[site] if i == per_site - 1 else float(i % 100) + 0.5
                await tx.publish(f"bench/{site}/status/em:0", shelly_status(amps), qos=0)
        published = time.perf_counter() - started
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - started
        reader.cancel()
    return {"payloads_in": per_site * len(sites), "measurements_out": out, "seconds": round(elapsed, 3),
            "publish_seconds": round(published, 3), "measurements_per_s": round(out / elapsed, 1),
            "payloads_per_s": round(per_site * len(sites) / elapsed, 1), "sites": len(sites)}


async def measure(url: str, quick: bool) -> dict[str, Any]:
    latency_samples = 100 if quick else 400
    burst = 400 if quick else 4000
    floor_latency = await floors.mqtt_round_trip(url, latency_samples)
    floor_rate = await raw_throughput(url, burst)
    latency = await bridge_latency(url, latency_samples)
    throughput = await bridge_burst(url, burst, [f"bench-site-{n}" for n in range(4)], coalesce=0.0)
    coalesced = await bridge_burst(url, burst // 4, ["bench-coalesced"], coalesce=0.1)
    return {
        "latency": latency,
        "floor_latency": floor_latency,
        "latency_ratio_p50": ratio(latency["p50_ms"], floor_latency["p50_ms"]),
        "latency_ratio_p99": ratio(latency["p99_ms"], floor_latency["p99_ms"]),
        "throughput": throughput,
        "floor_messages_per_s": round(floor_rate, 1),
        "throughput_ratio": round(throughput["measurements_per_s"] / floor_rate, 3),
        "coalesced_burst": {k: coalesced[k] for k in ("payloads_in", "measurements_out", "seconds")},
    }


def run(quick: bool = False) -> dict[str, Any]:
    with Mosquitto() as broker:
        return asyncio.run(measure(broker.url, quick))


if __name__ == "__main__":
    print(json.dumps(run(quick=False), indent=2))
