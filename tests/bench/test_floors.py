"""The benchmarks' floors are measured, not assumed: the relay chain really passes messages through."""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from bench.floors import relay_path
from bench.stamping import StampingConnection


async def test_a_chain_of_relay_processes_passes_every_message_to_the_websocket(mqtt_url: str) -> None:
    figures = await relay_path(mqtt_url, hops=2, gap=0.0, samples=5)
    assert figures["n"] == 5
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]


async def test_a_frame_is_stamped_when_it_came_off_the_socket_not_when_it_was_read() -> None:
    """The reaction benchmark's charge points are busy: a frame that waited for them is stamped when it arrived.
    Two messages sent at once, read 0.2 s later: each stamp is from before the wait ended, in order."""
    async def send_two(ws: ServerConnection) -> None:
        await ws.send("one")
        await ws.send(b"two")
        await ws.wait_closed()

    async with serve(send_two, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", create_connection=StampingConnection) as ws:
            await asyncio.sleep(0.2)  # both arrive meanwhile
            read_at = time.perf_counter()
            first, first_at = await ws.recv_stamped()
            second, second_at = await ws.recv_stamped()
    assert (first, second) == ("one", b"two")
    assert first_at <= second_at < read_at - 0.1
