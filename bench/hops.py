"""Where a trial of the reaction benchmark spent its time: its own messages' hops, from the services' traces.

The services run with ``AMPMQ_TRACE`` (:mod:`shared.trace`), so each notes when a message came off its broker
connection (``in``), when its handler began (``handle``), and what it published (``out``; the gateway: the
OCPP ``frame``). A trial is an overload reading for one site published at ``sent`` and the cut profile
arriving at the charge point; its hops are found by their topics, each the first after the hop before:

    meter    ──wire──▶ bridge in ─queue─▶ handle ─work─▶ measurement out
             ──wire──▶ allocator in ─queue─▶ handle ─work─▶ setpoint out
             ──wire──▶ adapter in ─queue─▶ handle ─work─▶ command out
             ──wire──▶ gateway in ─queue─▶ handle ─work─▶ frame sent ──wire──▶ charger

``wire`` is the broker and the operating system (and waiting for a CPU; a message or frame corked to the end of
its sender's turn, ``shared/cork.py``, is noted when written, so its wait for the push is wire too); ``queue``
is the message waiting in the service's inbox or for its event loop; ``work`` is the service's own. Around each
trial, per service: the collections (``gc``), the late wake-ups of its event loop (``lag``), and how many other
messages it handled; and the machine's own stalls (``bench/stall_watch.py``).
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from shared.topics import Topics

SERVICES = ("meter-bridge", "allocator", "load-adapters", "ocpp-gateway")
#: Notes of the machine itself (``bench/stall_watch.py``): its late wake-ups at real-time priority.
MACHINE = "machine"
STAGES = ("wire", "queue", "work")


@dataclass(frozen=True)
class Trial:
    """One overload: the site's meter topic, published at ``sent``; the charger whose cut came last."""

    site: str
    charger: str
    meter_topic: str
    sent: float
    arrived: float

    @property
    def latency(self) -> float:
        return self.arrived - self.sent


class Index:
    """One service's notes: the times of each (event, key), sorted, and every note in time order."""

    def __init__(self, records: list[tuple[float, str, str]]) -> None:
        self.times: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.all = records
        self.all_times = [r[0] for r in records]
        for t, event, key in records:
            self.times[(event, key)].append(t)

    def first(self, event: str, key: str, after: float) -> float | None:
        times = self.times.get((event, key), [])
        i = bisect.bisect_left(times, after)
        return times[i] if i < len(times) else None

    def between(self, start: float, end: float) -> list[tuple[float, str, str]]:
        return self.all[bisect.bisect_left(self.all_times, start):bisect.bisect_right(self.all_times, end)]


@dataclass
class Breakdown:
    """A trial's latency in segments (milliseconds), and what happened around it in each service."""

    trial: Trial
    segments: dict[str, float] = field(default_factory=dict)
    around: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = True


def hop_keys(topics: Topics, trial: Trial) -> list[tuple[str, str, str, str]]:
    """(service, topic in, event out, key out) for each of the four services, in path order."""
    site, cp = trial.site, trial.charger
    measurement, setpoint = topics.measurement(site), topics.setpoint(site, cp)
    command = topics.charger_command(site, cp, "SetChargingProfile")
    return [("meter-bridge", trial.meter_topic, "out", measurement),
            ("allocator", measurement, "out", setpoint),
            ("load-adapters", setpoint, "out", command),
            ("ocpp-gateway", command, "frame", cp)]


def break_down(trial: Trial, indexes: dict[str, Index], topics: Topics) -> Breakdown:
    result = Breakdown(trial)
    previous = trial.sent
    for service, topic_in, event_out, key_out in hop_keys(topics, trial):
        index = indexes.get(service)
        t_in = index.first("in", topic_in, previous) if index else None
        t_handle = index.first("handle", topic_in, t_in) if index and t_in is not None else None
        t_out = index.first(event_out, key_out, t_handle) if index and t_handle is not None else None
        if t_in is None or t_handle is None or t_out is None or t_out > trial.arrived:
            result.complete = False
            return result
        result.segments[f"{service}.wire"] = (t_in - previous) * 1000
        result.segments[f"{service}.queue"] = (t_handle - t_in) * 1000
        result.segments[f"{service}.work"] = (t_out - t_handle) * 1000
        previous = t_out
    result.segments["charger.wire"] = (trial.arrived - previous) * 1000
    for service in (*SERVICES, MACHINE):
        index = indexes.get(service)
        if index is None:
            continue
        notes = index.between(trial.sent, trial.arrived)
        collections = [(t, key) for t, event, key in notes if event == "gc"]
        paused, began = 0.0, None
        for t, event, _ in notes:  # each collection from its start to its end, within the trial
            if event == "gc":
                began = t
            elif event == "gc_end" and began is not None:
                paused, began = paused + t - began, None
        result.around[service] = {
            "handled": sum(1 for _, event, _ in notes if event == "handle"),
            "collections": [key for _, key in collections],
            "collection_ms": round(paused * 1000, 1),
            "lag_ms": [float(key) for _, event, key in notes if event == "lag"],
        }
    return result


def analyse(trials: list[Trial], traces: dict[str, list[tuple[float, str, str]]], topics: Topics | None = None,
            slowest: int = 5) -> dict[str, Any]:
    """The median of each segment over all trials, and over the slowest 2 % (at least ``slowest``); each of
    the ``slowest`` trials whole, with what happened around it."""
    topics = topics or Topics()
    indexes = {service: Index(records) for service, records in traces.items()}
    breakdowns = [break_down(t, indexes, topics) for t in trials]
    complete = [b for b in breakdowns if b.complete]
    if not complete:
        return {"traced_trials": 0, "trials": len(trials)}
    ordered = sorted(complete, key=lambda b: b.trial.latency)
    tail = ordered[-max(slowest, len(ordered) // 50):]
    keys = list(complete[0].segments)

    def medians(group: list[Breakdown]) -> dict[str, float]:
        return {k: round(statistics.median(b.segments[k] for b in group), 2) for k in keys}

    typical, slow = medians(complete), medians(tail)
    excess = {k: round(slow[k] - typical[k], 2) for k in keys}
    return {
        "traced_trials": len(complete),
        "trials": len(trials),
        "median_ms": typical,
        "slowest_2pct_median_ms": slow,
        "slowest_excess_ms": dict(sorted(excess.items(), key=lambda kv: -kv[1])[:5]),
        "by_stage_ms": {stage: {"all": round(sum(v for k, v in typical.items() if k.endswith(stage)), 2),
                                "slowest": round(sum(v for k, v in slow.items() if k.endswith(stage)), 2)}
                        for stage in STAGES},
        "slowest": [{"latency_ms": round(b.trial.latency * 1000, 1), "site": b.trial.site,
                     "segments_ms": {k: round(v, 1) for k, v in b.segments.items() if v >= 1.0},
                     "around": {s: a for s, a in b.around.items()
                                if a["collections"] or a["lag_ms"] or a["handled"] > 5}}
                    for b in ordered[-slowest:]],
    }


#: A late wake-up of the machine at least this long (ms) is a stall: nothing on the machine ran meanwhile.
STALL_MS = 10.0


def machine_stalls(trials: list[Trial], records: list[tuple[float, str, str]], slow_s: float = 0.05,
                   stall_ms: float = STALL_MS) -> dict[str, Any]:
    """The machine's stalls over the trials (``bench/stall_watch.py``): how many, the longest, and how many of
    the trials slower than ``slow_s`` one overlapped (a stall is noted when it ends, ``lag`` ms late)."""
    priority = next((key for _, event, key in records if event == "priority"), "unknown")
    if not trials:
        return {"priority": priority}
    first, last = min(t.sent for t in trials), max(t.arrived for t in trials)
    stalls = [(t - float(key) / 1000, t) for t, event, key in records
              if event == "lag" and float(key) >= stall_ms and first <= t <= last + 1.0]
    slow = [t for t in trials if t.latency > slow_s]
    return {
        "priority": priority,
        f"stalls_over_{stall_ms:g}ms": len(stalls),
        "longest_stall_ms": round(max(((end - start) * 1000 for start, end in stalls), default=0.0), 1),
        "slow_trials": len(slow),
        "slow_trials_in_a_stall": sum(1 for t in slow if any(start < t.arrived and end > t.sent
                                                             for start, end in stalls)),
    }


__all__ = ["MACHINE", "SERVICES", "Trial", "analyse", "break_down", "machine_stalls"]
