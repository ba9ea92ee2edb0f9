"""Allocator service: meter message in → setpoints out, with 1, 10 and 100 sites served by one instance.

For each size the service runs in a process of its own (``python -m services.allocator``, configured by a
YAML file) against a private Mosquitto; every site has a 3-phase and a
1-phase charger. *Latency*: publish one site's measurement, stop the clock when that site's setpoints for
both loads have arrived (p50/p99). *Throughput*: publish a measurement to every site at once and wait for
every site's decision, repeated; decisions per second, and the service process's CPU time per decision
(robust to whatever else the machine runs). The floor is the raw MQTT publish→receive round trip
through the same broker, measured in the same run; ``ratio`` is latency / floor.

    python -m bench.allocator_service [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from shared.broker import Mosquitto
from shared.models import Leg, LoadKind, LoadState, Phase, SiteMeasurement
from shared.models.measurement import CurrentReading
from shared.mqtt import BrokerAddress
from shared.probe import Probe
from shared.topics import Leaf, Topics

from .floors import mqtt_round_trip
from .processes import stop
from .stats import ratio, summary_ms

#: Decide on every message (no coalescing), never on the clock during a run, and no ramping. The loads
#: publish no draw (this harness has no cars): an increase counts as followed at once (``follow_time`` 0), or
#: break before make would hold every raise for 30 s, and their one state stays fresh for the whole run.
TIMERS = {"min_interval": 0.0, "refresh": 600.0, "stale_after": 600.0, "ramp_step": 100.0, "min_run": 0.0,
          "min_pause": 0.0, "grace": 0.0, "follow_time": 0.0, "load_stale_after": 3600.0}
LOADS = ("car", "van")
#: The house's current, alternating from one sample of a site to the next: at 2 A the car gets 16 A and the
#: van 6 A, at 14 A the car 10 A and the van pauses (fuse 25 A), so every sample changes both setpoints (an
#: unchanged setpoint is not republished: services/allocator/change_gate.py) and every round changes every
#: site's decision.
HOUSE = (14.0, 2.0)


def _measurement(site: str, house: float, loads: dict[Phase, float] | None = None) -> SiteMeasurement:
    """The grid meter sees the house and what the loads draw (each follows its setpoint at once)."""
    now = datetime.now(UTC)
    loads = loads or {}
    return SiteMeasurement(site=site, ts=now, grid_current={
        p: CurrentReading(ts=now, value=house + loads.get(p, 0.0)) for p in Phase})


def _load(site: str, load: str) -> LoadState:
    legs = [Leg.L1, Leg.L2, Leg.L3] if load == "car" else [Leg.L1]
    return LoadState(site=site, load=load, kind=LoadKind.EVSE, phases_in_use=legs, min_current=6.0, max_current=16.0)


class Arrivals:
    """Counts the messages on each topic and wakes whoever waits for the next one (cheaper than a Probe
    scanning its whole log, so the harness does not bound what is measured)."""

    def __init__(self, url: str) -> None:
        self._client = BrokerAddress.parse(url).client(f"bench-arrivals-{time.monotonic_ns()}")
        self._counts: dict[str, int] = {}
        #: The last payload on each topic.
        self.last: dict[str, bytes] = {}
        self._waiting: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Arrivals:
        await self._client.__aenter__()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._client.__aexit__(None, None, None)

    async def subscribe(self, topic_filter: str) -> None:
        await self._client.subscribe(topic_filter, qos=1)

    async def _read(self) -> None:
        async for message in self._client.messages:
            topic = str(message.topic)
            count = self._counts[topic] = self._counts.get(topic, 0) + 1
            self.last[topic] = message.payload if isinstance(message.payload, bytes) else b""
            waiter = self._waiting.get(topic)
            if waiter is not None and count >= waiter[0] and not waiter[1].done():
                waiter[1].set_result(None)

    def drawn(self, topics: Topics, site: str) -> dict[Phase, float]:
        """What the site's loads draw per phase: each its last setpoint."""
        drawn = dict.fromkeys(Phase, 0.0)
        for load in LOADS:
            if payload := self.last.get(topics.setpoint(site, load)):
                setpoint = json.loads(payload)
                for phase in setpoint["phases"] if setpoint["on"] else []:
                    drawn[Phase(phase)] += setpoint["current"]
        return drawn

    def next(self, topic: str) -> asyncio.Future[None]:
        """A future done when the next message on ``topic`` (after this call) has arrived."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[topic] = (self._counts.get(topic, 0) + 1, future)
        return future


@contextlib.contextmanager
def _allocator_process(url: str, root: str, sites: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m services.allocator`` in a process of its own, as deployed, configured by a YAML file."""
    with tempfile.TemporaryDirectory(prefix="ampmq-bench-") as folder:
        path = Path(folder) / "ampmq.yaml"
        path.write_text(yaml.safe_dump({"root": root, "log_level": "WARNING", "allocator": {
            "settle": 0.5, "sites": {s: {"timers": TIMERS} for s in sites}}}))
        env = {**os.environ, "AMPMQ_CONFIG": str(path), "AMPMQ_MQTT_URL": url}
        log = (Path(folder) / "allocator.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "services.allocator"], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield proc
        except Exception:
            log.flush()
            sys.stderr.write((Path(folder) / "allocator.log").read_text()[-4000:])
            raise
        finally:
            log.close()
            stop(proc, 10)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``): what a decision costs, whatever else
    the machine is busy with."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _size(url: str, sites: int, samples: int, rounds: int) -> dict[str, Any]:
    topics = Topics(f"bench-{sites}")
    names = [f"site-{i}" for i in range(sites)]
    house = {site: itertools.cycle(HOUSE) for site in names}  # each site's next reading: the other level
    async with Probe(url) as probe, Arrivals(url) as arrivals:

        def reading(site: str) -> SiteMeasurement:
            return _measurement(site, next(house[site]), arrivals.drawn(topics, site))

        await arrivals.subscribe(topics.load_filter(Leaf.SETPOINT))
        await arrivals.subscribe(topics.decision("+"))
        warm = [arrivals.next(topics.decision(site)) for site in names]
        for site in names:
            for load in LOADS:
                await probe.publish(topics.load_state(site, load), _load(site, load), retain=True)
            await probe.publish(topics.measurement(site), _measurement(site, HOUSE[-1]), retain=True)
        with _allocator_process(url, topics.root, names) as service:
            await asyncio.wait_for(asyncio.gather(*warm), 60)  # every site decided once: the service is warm
            await asyncio.sleep(0.2)

            latencies = []
            for i in range(samples):
                site = names[i % sites]
                setpoints = [arrivals.next(topics.setpoint(site, load)) for load in LOADS]
                whole = arrivals.next(topics.decision(site))
                started = time.perf_counter()
                await probe.publish(topics.measurement(site), reading(site), qos=0)
                await asyncio.wait_for(asyncio.gather(*setpoints), 10)
                latencies.append(time.perf_counter() - started)
                await asyncio.wait_for(whole, 10)  # the whole decision is out before the next sample

            started, cpu_before = time.perf_counter(), _cpu_seconds(service.pid)
            for _ in range(rounds):
                round_out = [arrivals.next(topics.decision(site)) for site in names]
                for site in names:
                    await probe.publish(topics.measurement(site), reading(site), qos=0)
                try:
                    await asyncio.wait_for(asyncio.gather(*round_out), 60)
                except TimeoutError:
                    silent = [site for site, out in zip(names, round_out, strict=True) if not out.done()]
                    raise TimeoutError(f"no decision within 60 s from {len(silent)} sites: {silent[:5]}") from None
            elapsed, cpu = time.perf_counter() - started, _cpu_seconds(service.pid) - cpu_before
    decisions = sites * rounds
    return {"latency": summary_ms(latencies), "decisions_per_s": round(decisions / elapsed, 1),
            "decisions": decisions, "service_cpu_ms_per_decision": round(cpu / decisions * 1000, 3)}


async def _measure(url: str, quick: bool) -> dict[str, Any]:
    floor = await mqtt_round_trip(url, 100 if quick else 300)
    results: dict[str, Any] = {"floor_mqtt_round_trip": floor}
    for sites in (1, 10, 100):
        samples = 30 if quick else 200
        rounds = (5 if quick else 20) if sites >= 100 else (20 if quick else 100)
        figures = await _size(url, sites, samples, rounds)
        figures["ratio_p50"] = ratio(figures["latency"]["p50_ms"], floor["p50_ms"])
        figures["ratio_p99"] = ratio(figures["latency"]["p99_ms"], floor["p99_ms"])
        results[f"sites_{sites}"] = figures
    return results


def run(quick: bool = False) -> dict[str, Any]:
    """The benchmark's figures, on a private Mosquitto."""
    logging.getLogger("ampmq").setLevel(logging.WARNING)
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt counts concurrent publishes aloud
    with Mosquitto() as broker:  # set_tcp_nodelay: see shared/broker.py
        return asyncio.run(_measure(broker.url, quick))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.allocator_service", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(quick=parser.parse_args().quick), indent=2))
