"""OCPP gateway benchmark: the gateway as its own process (``python -m services.ocpp_gateway``) on loopback,
a private Mosquitto, and thousands of bare websocket charge points in this process.

Figures:

* ``memory``: the gateway's RSS with 0 chargers and with N connected idle (booted) 1.6 chargers, and the
  RSS added per charger, at 100 / 1 000 / 5 000 (quick: 100 / 500).
* ``meter_values``: chargers send MeterValues as fast as the gateway answers (one outstanding CALL each,
  as OCPP-J allows) for a few seconds: MeterValues answered per second, ConnectorMeter updates received
  per second on MQTT (state waiting to be published is coalesced, latest wins), the latency from the
  charger's send to the MQTT receive (p50/p99) under that load, the gateway's CPU time per MeterValues,
  and that every charger's last value arrived.
* ``meter_values_steady``: an even 500 MeterValues per second (quick: 200) from 500 chargers (quick: 100)
  for 10 s: the share that reached MQTT and the send → MQTT latency (p50/p99) when the gateway keeps up.
* ``latency_unloaded``: one charger, one MeterValues at a time: send → the ConnectorMeter received on MQTT,
  against the floors measured in the same run on the same broker (a raw websocket send→receive round trip
  and a raw MQTT publish→receive round trip), with the ratio to their sum.
* ``memory_without_compression`` and ``meter_values_without_compression``: the same with the gateway's
  ``websocket_compression`` off, its default (the other figures are with it on: the bench clients offer
  permessage-deflate, and a gateway that offers it too pays for it in memory and CPU).
* ``reconnect``: 1 000 connected chargers lose their TCP connections at once (no close frame) and all
  reconnect (100 handshakes in flight): time until every one is through the handshake and booted again,
  and until MQTT shows every one ``online``.

``python -m bench.gateway [--quick]`` prints the figures as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import yaml
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from shared.broker import Mosquitto, free_port
from shared.mqtt import BrokerAddress
from shared.topics import Topics, slugify

from . import floors
from .processes import stop
from .stats import ratio, summary_ms

SITE = "bench"
TOPICS = Topics()
OCPP16 = [Subprotocol("ocpp1.6")]
BOOT = json.dumps([2, "boot", "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Load"}])


def _cp_id(i: int) -> str:
    return f"BENCH{i:05d}"


def raise_file_limit(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it) as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def gateway_process(broker_url: str, chargers: int, compression: bool = True) -> Any:
    """The gateway service in its own process, with ``chargers`` allowlisted ids; yields (pid, port)."""
    port = free_port()
    config = {"root": TOPICS.root, "log_level": "WARNING", "ocpp_gateway": {
        "host": "127.0.0.1", "port": port, "default_site": SITE, "heartbeat_interval": 3600,
        "websocket_compression": compression,
        "chargers": {_cp_id(i): {"auth": "none"} for i in range(chargers)}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "AMPMQ_CONFIG": str(path), "AMPMQ_MQTT_URL": broker_url}
        process = subprocess.Popen([sys.executable, "-m", "services.ocpp_gateway"], env=env, stdout=sys.stderr,
                                   cwd=Path(__file__).resolve().parents[1])
        try:
            yield process.pid, port
        finally:
            stop(process, 15)


async def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the gateway did not listen on {port} within {timeout}s")


async def open_charger(port: int, i: int) -> ClientConnection:
    """A booted 1.6 charger on a bare websocket (no OCPP library: the clients must stay cheap)."""
    for attempt in range(5):
        try:
            ws = await connect(f"ws://127.0.0.1:{port}/ocpp/{_cp_id(i)}", subprotocols=OCPP16, ping_interval=None,
                               open_timeout=30, max_queue=4)
            break
        except (OSError, TimeoutError):
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    await ws.send(BOOT)
    answer = json.loads(await ws.recv())
    if answer[0] != 3 or answer[2].get("status") != "Accepted":
        raise RuntimeError(f"charger {_cp_id(i)} not accepted: {answer}")
    return ws


async def open_many(port: int, indices: range, in_flight: int = 100) -> list[ClientConnection]:
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> ClientConnection:
        async with gate:
            return await open_charger(port, i)

    return list(await asyncio.gather(*(one(i) for i in indices)))


def meter_values(seq: int) -> str:
    """A MeterValues frame whose energy register carries ``seq``, to match it on MQTT."""
    return json.dumps([2, f"m{seq}", "MeterValues", {"connectorId": 1, "meterValue": [{
        "timestamp": "2026-12-01T00:00:00Z", "sampledValue": [
            {"value": str(seq), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "15.5", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "15.0", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
            {"value": "14.5", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
            {"value": "16", "measurand": "Current.Offered", "unit": "A"},
            {"value": "10700", "measurand": "Power.Active.Import", "unit": "W"}]}]}])


@contextlib.asynccontextmanager
async def mqtt_listener(url: str, topic_filter: str, on_message: Callable[[str, bytes], None]
                        ) -> AsyncIterator[None]:
    """Hand every message on ``topic_filter`` to ``on_message`` (a lean reader: no per-message bookkeeping)."""
    async with BrokerAddress.parse(url).client(f"bench-gw-{os.getpid()}-{time.monotonic_ns()}",
                                               max_queued_incoming_messages=0) as client:
        await client.subscribe(topic_filter, qos=0)

        async def read() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                on_message(str(message.topic), payload)

        reader = asyncio.get_running_loop().create_task(read())
        try:
            yield
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def measure_memory(pid: int, port: int, levels: list[int]) -> tuple[dict[str, Any], list[ClientConnection]]:
    await asyncio.sleep(0.5)
    base = rss_bytes(pid)
    figures: dict[str, Any] = {"rss_idle_mb": round(base / 2**20, 1)}
    clients: list[ClientConnection] = []
    for level in levels:
        started = time.perf_counter()
        clients += await open_many(port, range(len(clients), level))
        connect_s = time.perf_counter() - started
        await asyncio.sleep(1.0)  # let the gateway settle (publishes, buffers)
        rss = rss_bytes(pid)
        figures[str(level)] = {"rss_mb": round(rss / 2**20, 1),
                               "rss_per_charger_kb": round((rss - base) / level / 1024, 1),
                               "connect_and_boot_s": round(connect_s, 2)}
    return figures, clients


async def measure_meter_values(url: str, clients: list[ClientConnection], pid: int, seconds: float
                               ) -> dict[str, Any]:
    """Closed loop: every charger sends MeterValues as soon as the previous one is answered.

    The gateway coalesces retained state that waits to be published, so under overload MQTT carries
    fewer, fresher updates than chargers send: what must never be lost is each charger's last value.
    """
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    last_sent: dict[str, int] = {}
    last_received: dict[str, int] = {}
    received = 0

    def on_meter(topic: str, payload: bytes) -> None:
        nonlocal received
        now = time.perf_counter()
        seq = int(json.loads(payload)["energy_wh"])
        started = sent_at.pop(seq, None)
        if started is not None:
            received += 1
            latencies.append(now - started)
            charger = TOPICS.parse(topic).id or ""
            last_received[charger] = max(seq, last_received.get(charger, 0))

    counter = iter(range(1, 10**9))
    stop = asyncio.Event()

    async def charger_loop(charger: str, ws: ClientConnection) -> int:
        sent = 0
        while not stop.is_set():
            seq = next(counter)
            sent_at[seq] = time.perf_counter()
            await ws.send(meter_values(seq))
            await ws.recv()
            last_sent[charger] = seq
            sent += 1
        return sent

    def all_final_values_arrived() -> bool:
        return all(last_received.get(c, 0) >= seq for c, seq in last_sent.items())

    async with mqtt_listener(url, TOPICS.connector_meter(SITE, "+", 1), on_meter):
        await asyncio.sleep(0.3)
        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        loops = [asyncio.get_running_loop().create_task(charger_loop(slugify(_cp_id(i)), ws))
                 for i, ws in enumerate(clients)]
        await asyncio.sleep(seconds)
        stop.set()
        sent = sum(await asyncio.gather(*loops))
        elapsed = time.perf_counter() - started
        complete = await wait_until(all_final_values_arrived, 20)
        drained = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
    missing = sum(1 for c, seq in last_sent.items() if last_received.get(c, 0) < seq)
    return {"chargers": len(clients), "seconds": seconds, "sent": sent, "answered_per_s": round(sent / elapsed),
            "mqtt_updates": received, "mqtt_updates_per_s": round(received / drained),
            "coalesced": sent - received, "final_values_missing": missing, "complete": complete,
            "gateway_cpu_us_per_message": round(cpu / max(sent, 1) * 1e6, 1),
            "latency_send_to_mqtt": summary_ms(latencies) if latencies else {}}


async def measure_steady_rate(url: str, clients: list[ClientConnection], rate: float, seconds: float
                              ) -> dict[str, Any]:
    """Open loop: the chargers together send ``rate`` MeterValues per second, evenly spread; every value
    should reach MQTT (nothing left to coalesce when the gateway keeps up)."""
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    counter = iter(range(10**9, 2 * 10**9))
    interval = len(clients) / rate

    def on_meter(_topic: str, payload: bytes) -> None:
        started = sent_at.pop(int(json.loads(payload)["energy_wh"]), None)
        if started is not None:
            latencies.append(time.perf_counter() - started)

    async def charger_loop(index: int, ws: ClientConnection, until: float) -> int:
        await asyncio.sleep(interval * index / len(clients))  # spread the chargers over the interval
        next_send, sent = time.perf_counter(), 0
        while next_send < until:
            seq = next(counter)
            sent_at[seq] = time.perf_counter()
            await ws.send(meter_values(seq))
            await ws.recv()
            sent += 1
            next_send += interval
            await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
        return sent

    async with mqtt_listener(url, TOPICS.connector_meter(SITE, "+", 1), on_meter):
        await asyncio.sleep(0.3)
        started = time.perf_counter()
        sent = sum(await asyncio.gather(*(charger_loop(i, ws, started + seconds) for i, ws in enumerate(clients))))
        await wait_until(lambda: len(latencies) >= sent, 10)
    return {"chargers": len(clients), "target_per_s": rate, "sent_per_s": round(sent / seconds),
            "delivered": len(latencies), "sent": sent, "delivered_fraction": round(len(latencies) / max(sent, 1), 4),
            "latency_send_to_mqtt": summary_ms(latencies) if latencies else {}}


async def measure_unloaded(url: str, ws: ClientConnection, samples: int, floor: dict[str, Any]) -> dict[str, Any]:
    arrived: dict[int, asyncio.Event] = {}

    def on_meter(_topic: str, payload: bytes) -> None:
        event = arrived.get(int(json.loads(payload)["energy_wh"]))
        if event is not None:
            event.set()

    durations = []
    async with mqtt_listener(url, TOPICS.connector_meter(SITE, "+", 1), on_meter):
        await asyncio.sleep(0.3)
        for seq in range(2_000_000_000, 2_000_000_000 + samples):
            arrived[seq] = asyncio.Event()
            started = time.perf_counter()
            await ws.send(meter_values(seq))
            await asyncio.wait_for(arrived[seq].wait(), 10)
            durations.append(time.perf_counter() - started)
            await ws.recv()
    latency = summary_ms(durations)
    floor_p50 = floor["websocket_round_trip"]["p50_ms"] + floor["mqtt_round_trip"]["p50_ms"]
    return {"latency": latency, "floor_ws_plus_mqtt_p50_ms": round(floor_p50, 3),
            "ratio_p50": ratio(latency["p50_ms"], floor_p50)}


async def measure_reconnect(url: str, port: int, clients: list[ClientConnection]) -> tuple[dict[str, Any],
                                                                                           list[ClientConnection]]:
    count = len(clients)
    online: set[str] = set()
    mark = asyncio.Event()

    def on_availability(topic: str, payload: bytes) -> None:
        if mark.is_set() and payload == b"online":
            online.add(topic)

    async with mqtt_listener(url, TOPICS.charger_availability(SITE, "+"), on_availability):
        await asyncio.sleep(0.5)  # retained "online" of everyone arrives first: ignored
        for ws in clients:
            ws.transport.abort()
        mark.set()
        started = time.perf_counter()
        fresh = await open_many(port, range(count))
        booted_s = time.perf_counter() - started
        all_online = await wait_until(lambda: len(online) >= count, 30)
        online_s = time.perf_counter() - started
    return {"chargers": count, "all_booted_s": round(booted_s, 2), "all_online_on_mqtt_s": round(online_s, 2),
            "accepted_per_s": round(count / booted_s), "all_online": all_online}, fresh


async def measure(url: str, quick: bool) -> dict[str, Any]:
    levels = [100, 500] if quick else [100, 1000, 5000]
    raise_file_limit(2 * levels[-1] + 1000)
    floor = await floors.measure(url, 100 if quick else 300)
    results: dict[str, Any] = {"floors": floor}
    with gateway_process(url, levels[-1]) as (pid, port):
        await wait_listening(port)
        memory, clients = await measure_memory(pid, port, levels)
        results["memory"] = memory
        loaded = clients[: 50 if quick else 200]
        results["meter_values"] = await measure_meter_values(url, loaded, pid, 3.0 if quick else 10.0)
        results["meter_values_steady"] = await measure_steady_rate(
            url, clients[: 100 if quick else 500], 200.0 if quick else 500.0, 3.0 if quick else 10.0)
        results["latency_unloaded"] = await measure_unloaded(url, clients[0], 100 if quick else 300, floor)
        reconnecting = min(1000, len(clients))
        results["reconnect"], fresh = await measure_reconnect(url, port, clients[:reconnecting])
        await _close_all([*fresh, *clients[reconnecting:]])
    # the same chargers when the gateway does not offer permessage-deflate
    with gateway_process(url, levels[-1], compression=False) as (pid, port):
        await wait_listening(port)
        memory, clients = await measure_memory(pid, port, levels)
        results["memory_without_compression"] = memory
        results["meter_values_without_compression"] = await measure_meter_values(
            url, clients[: 50 if quick else 200], pid, 3.0 if quick else 10.0)
        await _close_all(clients)
    return results


async def _close_all(clients: list[ClientConnection]) -> None:
    async def close(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 2)

    gate = asyncio.Semaphore(500)

    async def gated(ws: ClientConnection) -> None:
        async with gate:
            await close(ws)

    await asyncio.gather(*(gated(ws) for ws in clients))


def run(quick: bool = False) -> dict[str, Any]:
    with Mosquitto() as broker:
        results = asyncio.run(measure(broker.url, quick))
    runs = [results["meter_values"], results["meter_values_without_compression"]]
    if not all(r["complete"] for r in runs) or not results["reconnect"]["all_online"]:
        raise RuntimeError(f"gateway benchmark lost a charger's last meter value or a charger: {results}")
    return results


def _main(argv: list[str]) -> int:
    print(json.dumps(run(quick="--quick" in argv), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

