"""The floors every latency is reported against, measured in the same run on the same machine:
an MQTT publish→receive round trip through the broker, a websocket send→receive on loopback, and for a path
through several processes, the same hops made by processes that do nothing but pass the message on."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from shared.broker import free_port, wait_for_port
from shared.probe import Probe

from .processes import stop
from .stamping import StampingConnection
from .stats import summary_ms

ROOT = Path(__file__).resolve().parents[1]


async def mqtt_round_trip(url: str, samples: int = 300) -> dict[str, float]:
    """Publish on one client, receive on another, through the broker at ``url``."""
    async with Probe(url) as sender, Probe(url) as receiver:
        await receiver.subscribe("bench/floor/#")
        durations = []
        for i in range(samples):
            mark = receiver.mark()
            started = time.perf_counter()
            await sender.publish(f"bench/floor/{i}", b"x" * 200, qos=0)
            await receiver.expect(f"bench/floor/{i}", after=mark, timeout=5)
            durations.append(time.perf_counter() - started)
    return summary_ms(durations)


async def websocket_round_trip(samples: int = 300) -> dict[str, float]:
    """Send a frame to an echo server on loopback and await it back."""

    async def echo(ws: ServerConnection) -> None:
        async for frame in ws:
            await ws.send(frame)

    port = free_port()
    async with serve(echo, "127.0.0.1", port), connect(f"ws://127.0.0.1:{port}") as ws:
        durations = []
        for _ in range(samples):
            started = time.perf_counter()
            await ws.send('[2,"1","Heartbeat",{}]')
            await ws.recv()
            durations.append(time.perf_counter() - started)
    return summary_ms(durations)


async def relay_path(url: str, hops: int, gap: float, samples: int = 100) -> dict[str, float]:
    """A message published here, passed on by ``hops`` relay processes (bench/relay.py: MQTT in, MQTT out;
    the last one sends it as a websocket frame), stamped when the frame arrives back here: what a path through
    that many separate processes costs with no work done in them. Messages are ``gap`` seconds apart, so each
    relay is woken from idle, as the reaction path's services are by an overload."""
    port = free_port()
    topics = [f"bench/relay/{n}" for n in range(hops)]
    relays = [subprocess.Popen([sys.executable, "-m", "bench.relay", url, topics[n], topics[n + 1]], cwd=ROOT)
              for n in range(hops - 1)]
    relays.append(subprocess.Popen([sys.executable, "-m", "bench.relay", url, topics[-1], "--ws", str(port)],
                                   cwd=ROOT))
    payload = b"x" * 300  # about a setpoint's size
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 30.0)
        async with Probe(url) as sender, \
                connect(f"ws://127.0.0.1:{port}", create_connection=StampingConnection) as ws:
            for _ in range(100):  # until every relay has subscribed and a message makes it through
                await sender.publish(topics[0], payload, qos=0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.recv_stamped(), 0.2)
                    break
            else:
                raise RuntimeError("the relay chain never passed a message through")
            await asyncio.sleep(0.5)
            while True:  # anything still on its way from the warm-up
                try:
                    await asyncio.wait_for(ws.recv_stamped(), 0.1)
                except TimeoutError:
                    break
            durations = []
            for _ in range(samples):
                await asyncio.sleep(gap)
                started = time.perf_counter()
                await sender.publish(topics[0], payload, qos=0)
                _, arrived = await asyncio.wait_for(ws.recv_stamped(), 5)
                durations.append(arrived - started)  # stamped as the charge points' frames are
        return summary_ms(durations)
    finally:
        for relay in relays:
            stop(relay, 5)


async def measure(url: str, samples: int = 300) -> dict[str, Any]:
    return {"mqtt_round_trip": await mqtt_round_trip(url, samples),
            "websocket_round_trip": await websocket_round_trip(samples)}
