"""Reaction at scale (issue 19): up to 10 000 chargers on 5 000 sites, the services partitioned over several
processes on one machine and one broker, ramped until something saturates.

The sites (two chargers each, :func:`bench.reaction.site_layout`) are split into P partitions of consecutive
sites. Each partition has its own config file (:func:`bench.reaction.config`'s shape, naming only its own
sites, loads and chargers; the allocator's and the gateway's ``serve_only`` list its sites) and its own four service
processes — meter bridge, allocator, load adapters, OCPP gateway, each ``python -m shared.cli <service>`` —
and its gateway listens on **its own port** (several ports, one per partition: the simplest honest layout;
one port in front of several gateways would need a proxy or ``SO_REUSEPORT`` steering by charger id, which
nothing here has). One Mosquitto serves them all. Each partition's charge points and meters live in a
harness process of their own (:mod:`bench.scale_harness`), so the harness spreads over the cores as the
services do; each harness overloads its own sites one at a time, the partitions taking turns so that the
fleet sees one overload every ``TRIAL_EVERY_S`` (as in :mod:`bench.reaction`) whatever P, and sends its
overload→cut latencies back.

Per step: p50/p99 overload→cut, trials over 50 ms, cuts that never arrived (``wrong``), connect+boot time,
and the CPU seconds per second of each process kind over the trial window (``/proc/<pid>/stat``
utime+stime; summed over partitions, and the busiest single process of the kind), so the report says which
process saturates first. The ramp stops at the first step that fails badly (p99 over ``BAD_P99_S``, a cut
lost, a partition that never got ready): the saturation point.

With ``check_ownership`` the services run traced (:mod:`shared.trace`) and every process's publications
are checked against its partition: an allocator's setpoints, an adapter's commands, a gateway's frames and
every service's error reports name only its own sites (off in the full ramp: tracing 10 000 chargers costs
memory and CPU of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from shared import trace
from shared.broker import Mosquitto, free_port
from shared.heap import FIRST_FREEZE_S
from shared.probe import Probe
from shared.services import SERVICES
from shared.topics import TopicError, Topics

from .processes import stop_all
from .reaction import TRIAL_EVERY_S, config, site_layout
from .stats import summary_ms

ROOT = Path(__file__).resolve().parents[1]
#: A step whose p99 overload→cut passes this has failed badly: the ramp stops there.
BAD_P99_S = 2.0
#: After every charger holds its maximum, this long before the trials: at 10 000 chargers the start-up
#: burst takes a while to drain, and trials in it measure the start, not the steady state.
SETTLE_AFTER_READY_S = 20.0
KINDS = {"meter-bridge": "bridge", "allocator": "allocator", "load-adapters": "adapters",
         "ocpp-gateway": "gateway"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Step:
    """One size of the ramp: ``chargers`` (two per site) over ``partitions``, every site's meter reporting
    every ``meter_interval`` seconds, ``trials`` overloads in all (shared between the partitions)."""

    chargers: int
    partitions: int
    meter_interval: float
    trials: int = 200
    #: The longest wait for each cut (s); for the fleet's start, four times that.
    patience: float = 10.0

    @property
    def name(self) -> str:
        return f"chargers_{self.chargers}_p{self.partitions}_meter_{self.meter_interval:g}s"

    @classmethod
    def parse(cls, text: str) -> Step:
        """``CHARGERS:PARTITIONS:METER_INTERVAL[:TRIALS]``, e.g. ``10000:4:5``."""
        fields = text.split(":")
        return cls(int(fields[0]), int(fields[1]), float(fields[2]), *(int(f) for f in fields[3:4]))


#: One partition per core: a service is one asyncio thread, so P = cores lets each kind use every core; more
#: partitions only add processes, and fan-in (every allocator and gateway hears every site's traffic).
PARTITIONS = max(2, os.cpu_count() or 2)
#: The full ramp, by meter readings a second (sites / interval) and fleet size: 500, 400, 500, 1 000,
#: 2 000, 2 500, 5 000 readings/s.
FULL = [Step(1000, PARTITIONS, 1.0), Step(4000, PARTITIONS, 5.0), Step(10000, PARTITIONS, 10.0),
        Step(10000, PARTITIONS, 5.0), Step(4000, PARTITIONS, 1.0), Step(10000, PARTITIONS, 2.0),
        Step(10000, PARTITIONS, 1.0)]
QUICK = [Step(200, 2, 1.0, trials=20)]


def split(sites: dict[str, list[str]], parts: int) -> list[dict[str, list[str]]]:
    """``sites`` in ``parts`` runs of consecutive sites, as even as they go."""
    names = list(sites)
    bounds = [round(i * len(names) / parts) for i in range(parts + 1)]
    return [{s: sites[s] for s in names[bounds[i]:bounds[i + 1]]} for i in range(parts)]


def partition_config(sites: dict[str, list[str]], port: int, meter_interval: float) -> dict[str, Any]:
    """One partition's config: :func:`bench.reaction.config` for its own sites, the allocator and the gateway
    serving only them (``serve_only``), readings stale only after three missed meter intervals."""
    conf = config(sites, port)
    stale = max(15.0, 3 * meter_interval)
    conf["allocator"]["serve_only"] = list(sites)
    conf["ocpp_gateway"]["serve_only"] = list(sites)
    for site in sites:
        conf["allocator"]["sites"][site]["timers"]["stale_after"] = stale
        conf["meter_bridge"]["sites"][site]["stale_after"] = stale
    return conf


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Partition:
    """One partition's sites, port and processes."""

    index: int
    sites: dict[str, list[str]]
    port: int
    config_file: str
    services: dict[str, subprocess.Popen[bytes]]
    harness: subprocess.Popen[str] | None = None

    def processes(self) -> list[tuple[str, int]]:
        """(kind, pid) of every process of the partition."""
        kinds = [(KINDS[name], p.pid) for name, p in self.services.items()]
        return kinds + ([("harness", self.harness.pid)] if self.harness else [])

    def tell(self, line: str) -> None:
        assert self.harness is not None and self.harness.stdin is not None
        with contextlib.suppress(OSError):
            self.harness.stdin.write(line + "\n")
            self.harness.stdin.flush()

    async def hear(self, timeout: float) -> dict[str, Any]:
        """The harness's next message (a JSON line), or why there was none."""
        assert self.harness is not None
        stdout: IO[str] | None = self.harness.stdout
        assert stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), timeout)
        except TimeoutError:
            return {"wrong": [f"partition {self.index}: no answer from its harness within {timeout:.0f}s"]}
        if not line:
            return {"wrong": [f"partition {self.index}: its harness ended (exit {self.harness.poll()})"]}
        message: dict[str, Any] = json.loads(line)
        return message


def start_partition(index: int, sites: dict[str, list[str]], step: Step, broker: str,
                    traces: Path | None) -> Partition:
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=f"-p{index}.yaml", delete=False) as conf:
        yaml.safe_dump(partition_config(sites, port, step.meter_interval), conf)
    env = {**os.environ, "AMPMQ_MQTT_URL": broker, "AMPMQ_CONFIG": conf.name}
    if traces is not None:
        env[trace.ENV] = str(traces)
    services = {name: subprocess.Popen([sys.executable, "-m", "shared.cli", name], cwd=ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name in SERVICES}
    return Partition(index, sites, port, conf.name, services)


def start_harness(partition: Partition, step: Step, broker: str) -> None:
    partition.harness = subprocess.Popen([sys.executable, "-m", "bench.scale_harness"], cwd=ROOT, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    partition.tell(json.dumps({"broker": broker, "port": partition.port, "sites": partition.sites,
                               "meter_interval": step.meter_interval,
                               "trials": math.ceil(step.trials / step.partitions), "patience": step.patience,
                               "trial_every": TRIAL_EVERY_S * step.partitions,
                               "offset": TRIAL_EVERY_S * partition.index}))


def stop_partition(partition: Partition) -> None:
    if partition.harness is not None:
        partition.tell("stop")
    stop_all(partition.services.values(), 20)
    if partition.harness is not None:
        stop_all([partition.harness], 20)
    os.unlink(partition.config_file)


def strays(partitions: list[Partition], traces: Path, topics: Topics) -> list[str]:
    """Every publication (and gateway frame) a traced service process made for a site or charger of another
    partition."""
    owner_of_pid = {p.pid: part for part in partitions for p in part.services.values()}
    found: list[str] = []
    for path in sorted(traces.glob("*.trace.json")):
        data = json.loads(path.read_text())
        part = owner_of_pid.get(data["pid"])
        if part is None:
            continue
        chargers = {cp for cps in part.sites.values() for cp in cps}
        for _, event, key in data["records"]:
            if event == "frame":
                if key not in chargers:
                    found.append(f"{data['service']} of partition {part.index} sent a frame to charger {key}")
            elif event == "out":
                with contextlib.suppress(TopicError):
                    site = topics.parse(key).site
                    if site is not None and site not in part.sites:
                        found.append(f"{data['service']} of partition {part.index} published {key}")
    return found


async def run_step(step: Step, *, broker_url: str | None = None, check_ownership: bool = False,
                   settle: float | None = None) -> dict[str, Any]:
    """One step of the ramp, on a broker of its own unless ``broker_url`` names one (its CPU is then not
    counted). ``settle``: seconds from launch before the trials (by default: until every service has frozen
    its start-up heap, as :mod:`bench.reaction` waits)."""
    sites = site_layout(step.chargers)
    traces = Path(tempfile.mkdtemp(prefix="ampmq-scale-trace-")) if check_ownership else None
    topics = Topics()
    result: dict[str, Any] = {"chargers": step.chargers, "sites": len(sites), "partitions": step.partitions,
                              "gateway_ports": step.partitions, "meter_interval_s": step.meter_interval,
                              "meter_readings_per_s": round(len(sites) / step.meter_interval, 1),
                              "trial_every_s": TRIAL_EVERY_S}
    wrong: list[str] = []
    partitions: list[Partition] = []
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(Mosquitto()) if broker_url is None else None
        url = broker.url if broker is not None else str(broker_url)
        launched = time.perf_counter()
        try:
            async with Probe(url) as watch:
                await watch.subscribe(topics.errors("+"))
                for name in SERVICES:
                    await watch.subscribe(topics.service_instances_filter(name))
                    await watch.subscribe(topics.service_availability(name))
                for index, own in enumerate(split(sites, step.partitions)):
                    partitions.append(start_partition(index, own, step, url, traces))
                for partition in partitions:
                    start_harness(partition, step, url)
                start_timeout = 60.0 + 4 * step.patience + step.chargers / 25  # connect, then the harness's wait
                ready = await asyncio.gather(*(p.hear(start_timeout) for p in partitions))
                for message in ready:
                    wrong.extend(message.get("wrong", []))
                for figure in ("connect_and_boot_s", "all_at_maximum_s"):  # the slowest partition's
                    result[figure] = max((m[figure] for m in ready if figure in m), default=None)
                wait = settle if settle is not None else FIRST_FREEZE_S * 1.25 + 10.0
                # and the start-up burst (a profile, a report and a state per charger) has drained
                await asyncio.sleep(max(SETTLE_AFTER_READY_S, launched + wait - time.perf_counter()))
                pids = [(kind, pid) for p in partitions for kind, pid in p.processes()]
                if broker is not None and broker._proc is not None:
                    pids.append(("broker", broker._proc.pid))
                instances = instances_online(watch, topics, partitions)
                result["instances_online"] = instances
                wrong.extend(f"{name}: {n} of {step.partitions} instances online, or the service not online"
                             for name, n in instances.items() if n != step.partitions)
                started_trials = watch.mark()
                before = {pid: cpu_seconds(pid) for _, pid in pids}
                window_start = time.perf_counter()
                for partition in partitions:
                    partition.tell("go")
                trial_timeout = 60.0 + math.ceil(step.trials / step.partitions) * (TRIAL_EVERY_S * step.partitions
                                                                                 + step.patience)
                outcomes = await asyncio.gather(*(p.hear(trial_timeout) for p in partitions))
                window = time.perf_counter() - window_start
                after = {pid: cpu_seconds(pid) for _, pid in pids}
                at_start = [m for m in watch.messages[:started_trials] if m.topic.endswith("/errors")]
                in_trials = watch.on(topics.errors("+"), after=started_trials)
            result["cpu_window_s"] = round(window, 1)
            result["cpu_s_per_s"], result["busiest_process_s_per_s"] = cpu_by_kind(pids, before, after, window)
            result["machine_cpu_s_per_s"] = round(sum(result["cpu_s_per_s"].values()), 2)
            latencies = [s for o in outcomes for s in o.get("latencies", [])]
            for outcome in outcomes:
                wrong.extend(outcome.get("wrong", []))
            if latencies:
                result["overload_to_cut"] = summary_ms(latencies)
                result["trials_over_50ms"] = sum(1 for s in latencies if s > 0.05)
                result["slowest_ms"] = [round(s * 1000, 1) for s in sorted(latencies)[-5:]]
            # at the start the allocator reports each load whose charger is not connected yet (load_offline)
            for when, reports in (("at_start", at_start), ("in_trials", in_trials)):
                result[f"error_reports_{when}"] = len(reports)
                if reports:
                    result[f"error_codes_{when}"] = sorted({r.json().get("error", "?") for r in reports})
        finally:
            for partition in partitions:
                stop_partition(partition)
    if traces is not None:
        found = strays(partitions, traces, topics)
        result["strays"] = len(found)
        wrong.extend(found[:5])
        shutil.rmtree(traces, ignore_errors=True)
    if wrong:
        result["wrong"] = wrong[:10] + ([f"… {len(wrong) - 10} more"] if len(wrong) > 10 else [])
    return result


def instances_online(watch: Probe, topics: Topics, partitions: list[Partition]) -> dict[str, int]:
    """For each service: how many of this step's processes have their instance entry ``online``
    (:mod:`shared.availability`), or -1 while the service's own availability is not ``online``."""
    counts: dict[str, int] = {}
    for name in SERVICES:
        said = watch.on(topics.service_availability(name))
        if not said or said[-1].text != "online":
            counts[name] = -1
            continue
        pids = {str(part.services[name].pid) for part in partitions}
        latest = {m.topic: m.text for m in watch.on(topics.service_instances_filter(name))}
        counts[name] = sum(1 for topic, text in latest.items()
                           if text == "online" and set(topic.rsplit("/", 1)[1].split("-")) & pids)
    return counts


def cpu_by_kind(pids: list[tuple[str, int]], before: dict[int, float], after: dict[int, float],
                window: float) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds per second of each kind of process over the window: summed over partitions, and the
    busiest single process of the kind (one process cannot pass 1.0: that is its saturation)."""
    total: dict[str, float] = {}
    busiest: dict[str, float] = {}
    for kind, pid in pids:
        rate = max(0.0, after[pid] - before[pid]) / window  # (0 after: the process is gone)
        total[kind] = total.get(kind, 0.0) + rate
        busiest[kind] = max(busiest.get(kind, 0.0), rate)
    order = sorted(total, key=lambda k: -total[k])
    return {k: round(total[k], 3) for k in order}, {k: round(busiest[k], 3) for k in order}


def failed_badly(result: dict[str, Any]) -> str | None:
    """Why a step is the saturation point, or None when it held."""
    if result.get("wrong"):
        return f"cuts lost or a partition not ready: {result['wrong'][0]}"
    cut = result.get("overload_to_cut")
    if cut is None:
        return "no trial completed"
    if cut["p99_ms"] > BAD_P99_S * 1000:
        return f"p99 overload→cut {cut['p99_ms']:.0f} ms > {BAD_P99_S * 1000:.0f} ms"
    return None


def ramp(steps: list[Step], *, check_ownership: bool = False, settle: float | None = None) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    out: dict[str, Any] = {"steps": {}}
    for step in steps:
        result = asyncio.run(run_step(step, check_ownership=check_ownership, settle=settle))
        out["steps"][step.name] = result
        if result.get("wrong"):
            out.setdefault("wrong", []).extend(f"{step.name}: {w}" for w in result["wrong"])
        if (why := failed_badly(result)) is not None:
            out["saturation"] = {"step": step.name, "why": why,
                                 "busiest_kind": next(iter(result.get("cpu_s_per_s", {})), None),
                                 "cpu_s_per_s": result.get("cpu_s_per_s"),
                                 "busiest_process_s_per_s": result.get("busiest_process_s_per_s")}
            break
    else:
        out["saturation"] = {"step": None, "why": "every step held"}
    return out


def run(quick: bool = False) -> dict[str, Any]:
    return ramp(QUICK if quick else FULL, check_ownership=quick)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smoke size")
    parser.add_argument("--step", action="append", type=Step.parse, default=[],
                        help="CHARGERS:PARTITIONS:METER_INTERVAL[:TRIALS], repeatable (default: the full ramp)")
    parser.add_argument("--check-ownership", action="store_true", help="trace the services and check partitions")
    args = parser.parse_args(argv)
    steps = args.step or (QUICK if args.quick else FULL)
    print(json.dumps(ramp(steps, check_ownership=args.check_ownership or args.quick), indent=2))


if __name__ == "__main__":
    main()
