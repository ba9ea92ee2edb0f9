"""The floors every latency is reported against, measured in the same run on the same machine:
an MQTT publish→receive round trip through the broker, and a websocket send→receive on loopback."""

from __future__ import annotations

import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from shared.broker import free_port
from shared.probe import Probe

from .stats import summary_ms


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


async def measure(url: str, samples: int = 300) -> dict[str, Any]:
    return {"mqtt_round_trip": await mqtt_round_trip(url, samples),
            "websocket_round_trip": await websocket_round_trip(samples)}
