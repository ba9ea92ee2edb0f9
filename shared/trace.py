"""Per-hop timestamps: where a message's time goes on its way through the services.

Off unless the environment variable ``AMPMQ_TRACE`` names a directory. Then each process notes, in memory,
when each message came off its broker connection (``in``), when its handler began (``handle``) and ended
(``done``), each publication (``out``), each OCPP frame it sent to a charger (``frame``), each garbage
collection (``gc``, with its generation, and ``gc_end``), and each time its event loop woke late (``lag``,
by how much); and it writes them to ``<dir>/<service>-<pid>.trace.json`` when it exits.

Every time is ``time.perf_counter()``, which on Linux is ``CLOCK_MONOTONIC``: one clock for every process of
a host, so the benchmark lines up one message's hops across four processes (``bench/hops.py``).

Noting costs a list append of a time and a string: times go into an ``array`` and events and keys into
lists of strings, none of which the cyclic collector tracks, so tracing adds no collector work of its own
(the thing it is often used to look at).
"""

from __future__ import annotations

import array
import asyncio
import atexit
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

ENV = "AMPMQ_TRACE"
#: The lag sampler wakes every LAG_EVERY_S and notes a wake-up later than LAG_NOTED_S.
LAG_EVERY_S = 0.05
LAG_NOTED_S = 0.002


class Trace:
    """One process's notes: parallel columns of time, event and key."""

    def __init__(self) -> None:
        self.times = array.array("d")
        self.events: list[str] = []
        self.keys: list[str] = []

    def note(self, event: str, key: str) -> None:
        self.times.append(time.perf_counter())
        self.events.append(event)
        self.keys.append(key)

    def records(self) -> list[tuple[float, str, str]]:
        return list(zip(self.times, self.events, self.keys, strict=True))


_trace: Trace | None = None
_service = "process"


def note(event: str, key: str) -> None:
    """Note ``event`` about ``key`` (a topic, a charger) now, when tracing is on."""
    if _trace is not None:
        _trace.note(event, key)


def enabled() -> bool:
    return _trace is not None


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    if _trace is not None:
        _trace.note("gc" if phase == "start" else "gc_end", str(info["generation"]))


def start(service: str) -> None:
    """Trace this process as ``service`` if ``AMPMQ_TRACE`` asks for it (once per process)."""
    global _trace, _service
    directory = os.environ.get(ENV)
    if not directory or _trace is not None:
        return
    _trace = Trace()
    _service = service
    gc.callbacks.append(_on_collection)
    atexit.register(write, Path(directory))


async def watch_lag(every: float = LAG_EVERY_S, noted: float = LAG_NOTED_S) -> None:
    """While tracing, note each wake-up of this loop more than ``noted`` seconds late: time the loop spent on
    something else (a long handler, a collection, another process holding the CPU)."""
    if _trace is None:
        return
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every
        await asyncio.sleep(every)
        late = loop.time() - due
        if late > noted:
            _trace.note("lag", f"{late * 1000:.1f}")


def write(directory: Path) -> Path | None:
    """Write this process's notes to ``directory``; the file's path, or None when tracing is off."""
    if _trace is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_service}-{os.getpid()}.trace.json"
    path.write_text(json.dumps({"service": _service, "pid": os.getpid(), "records": _trace.records()}))
    return path


def read(directory: Path) -> dict[str, list[tuple[float, str, str]]]:
    """Every process's notes in ``directory``, by service (processes of one service merged, in time order)."""
    by_service: dict[str, list[tuple[float, str, str]]] = {}
    for path in sorted(directory.glob("*.trace.json")):
        data = json.loads(path.read_text())
        by_service.setdefault(data["service"], []).extend((t, e, k) for t, e, k in data["records"])
    for records in by_service.values():
        records.sort(key=lambda r: r[0])
    return by_service


__all__ = ["ENV", "Trace", "enabled", "note", "read", "start", "watch_lag", "write"]
