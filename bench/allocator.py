"""Allocator core benchmark: how fast ``allocate(snapshot, now)`` decides, and how it grows with the loads.

Figures:

* ``three_loads``: decisions per second for a 3-load site (an EV, a 1-phase EV mapped L1->B, a plug), the
  issue's target being >= 5 000/s on one core (median, and the best round); beside it the time to
  ``Snapshot.model_validate`` the same snapshot from a dict (what the service pays anyway to read its
  input) and the ratio.
* ``sizes``: median time per decision for 10, 100, 1 000 and 10 000 loads (target <= 50 ms at 1 000), each
  beside two floors measured in the same run: ``validate_ms`` (model_validate of that snapshot) and
  ``loop_ms`` (a trivial Python loop that touches every load once), with the ratios.
* ``growth_exponent``: the log-log slope of time against loads (1.0 = linear), and the same for the floors.

The measured functions take turns within every round (see ``_paired``), so on a busy machine the ratios
hold even where the absolute figures drift. Every snapshot mixes modes (Standard, Solar Priority, Solar
Only, Excess), kinds (3-phase and 1-phase EVs, plugs, stepped boilers), priorities, circuits and a
remembered previous decision, on a site exporting solar.
``python -m bench.allocator [--quick]`` prints the dict as JSON.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.allocator.core import allocate
from shared.models import (
    BatterySettings,
    Circuit,
    CurrentReading,
    Leg,
    LoadKind,
    LoadMemory,
    LoadSettings,
    LoadState,
    Mode,
    PercentReading,
    Phase,
    PowerReading,
    SiteMeasurement,
    SiteSettings,
)
from shared.models.allocation import LoadInput, SiteMemory, Snapshot

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SITE = "bench"
MODES = [Mode.STANDARD, Mode.SOLAR_PRIORITY, Mode.SOLAR_ONLY, Mode.EXCESS]
ROTATIONS = [(Phase.A, Phase.B, Phase.C), (Phase.B, Phase.C, Phase.A), (Phase.C, Phase.A, Phase.B)]


def _load(i: int) -> LoadInput:
    name = f"load-{i}"
    kind_pick = i % 4
    rotation = ROTATIONS[i % 3]
    legs = dict(zip((Leg.L1, Leg.L2, Leg.L3), rotation, strict=True))
    common: dict[str, Any] = {"site": SITE, "load": name, "ts": NOW, "legs": legs, "circuit": f"c{i % 4}"}
    if kind_pick == 0:
        state = LoadState(
            kind=LoadKind.EVSE, min_current=6.0, max_current=16.0, draw={p: 6.0 for p in rotation}, **common
        )
    elif kind_pick == 1:
        state = LoadState(kind=LoadKind.EVSE, phases_in_use=[Leg.L1], min_current=6.0, max_current=32.0, **common)
    elif kind_pick == 2:
        state = LoadState(kind=LoadKind.ONOFF, phases_in_use=[Leg.L1], rated_power=2300.0, **common)
    else:
        state = LoadState(
            kind=LoadKind.STEPPED, phases_in_use=[Leg.L1], steps=[2.0, 4.0, 8.0], max_current=8.0, **common
        )
    settings = LoadSettings(site=SITE, load=name, ts=NOW, mode=MODES[i % len(MODES)], priority=1 + i % 9)
    running = i % 3 == 0
    memory = LoadMemory(
        current=6.0 if running else 0.0,
        on=running,
        active_since=NOW - timedelta(seconds=30 + i % 200) if running else None,
        paused_since=None if running else NOW - timedelta(seconds=60 + i % 400),
        mode=settings.mode,
    )
    return LoadInput(state=state, settings=settings, memory=memory)


def snapshot(loads: int) -> Snapshot:
    """A site sized so every load matters: the fuse grows with the number of loads (up to 1000 A)."""
    fuse = min(1000.0, 25.0 + 4.0 * loads)
    settings = SiteSettings(
        site=SITE,
        ts=NOW,
        fuse_limit=fuse,
        battery=BatterySettings(target_soc=60.0, max_charge_power=5000.0),
        circuits=[Circuit(id="c0", limit=fuse), Circuit(id="c1", limit=fuse / 2, parent="c0")]
        + [Circuit(id=f"c{k}", limit=fuse / 3) for k in (2, 3)],
        imbalance_limit=fuse / 2,
    )
    measurement = SiteMeasurement(
        site=SITE,
        ts=NOW,
        grid_current={p: CurrentReading(ts=NOW, value=0.3 * fuse - 5.0) for p in Phase},
        battery_soc=PercentReading(ts=NOW, value=70.0),
        battery_power=PowerReading(ts=NOW, value=-1500.0),
        solar_power=PowerReading(ts=NOW, value=6000.0),
    )
    return Snapshot(
        settings=settings,
        measurement=measurement,
        loads=[_load(i) for i in range(loads)],
        memory=SiteMemory(surplus_ema={p: 4.0 for p in Phase}),
    )


def three_load_snapshot() -> Snapshot:
    loads = [
        LoadInput(
            state=LoadState(
                site=SITE,
                load="ev",
                kind=LoadKind.EVSE,
                ts=NOW,
                min_current=6.0,
                max_current=16.0,
                draw={p: 10.0 for p in Phase},
            ),
            memory=LoadMemory(current=10.0, on=True, active_since=NOW - timedelta(seconds=600)),
        ),
        LoadInput(
            state=LoadState(
                site=SITE,
                load="ev-b",
                kind=LoadKind.EVSE,
                ts=NOW,
                legs={Leg.L1: Phase.B},
                phases_in_use=[Leg.L1],
                min_current=6.0,
                max_current=32.0,
            ),
            settings=LoadSettings(site=SITE, load="ev-b", ts=NOW, mode=Mode.SOLAR_ONLY, priority=2),
        ),
        LoadInput(
            state=LoadState(
                site=SITE,
                load="plug",
                kind=LoadKind.ONOFF,
                ts=NOW,
                legs={Leg.L1: Phase.C},
                phases_in_use=[Leg.L1],
                rated_power=2300.0,
            ),
        ),
    ]
    return Snapshot(
        settings=SiteSettings(site=SITE, ts=NOW),
        measurement=SiteMeasurement(
            site=SITE,
            ts=NOW,
            grid_current={p: CurrentReading(ts=NOW, value=v) for p, v in zip(Phase, (12.0, -6.0, 3.0), strict=True)},
        ),
        loads=loads,
    )


def _batch(fn: Callable[[], object], number: int) -> float:
    started = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - started) / number


def _paired(fns: dict[str, Callable[[], object]], repeats: int, number: int) -> dict[str, dict[str, float]]:
    """Seconds per call of each function: median and best over ``repeats`` rounds of ``number`` calls.

    The functions take turns within every round, so a busy machine slows them alike and the ratios of the
    medians stay meaningful even when the absolute figures do not."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(_batch(fn, number))
    return {name: {"median": statistics.median(v), "best": min(v)} for name, v in samples.items()}


def _slope(xs: list[float], ys: list[float]) -> float:
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    num = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    den = sum((a - mx) ** 2 for a in lx)
    return round(num / den, 2)


def _check(snap: Snapshot) -> None:
    """A benchmark fails only on a wrong result: the decision must be deterministic and cover every load."""
    first, second = allocate(snap, NOW), allocate(snap, NOW)
    if first != second or len(first.decisions) != len(snap.loads):
        raise AssertionError("allocate is not deterministic or lost a load")


def run(quick: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    small = three_load_snapshot()
    _check(small)
    raw_small = small.model_dump()
    got = _paired(
        {"allocate": lambda: allocate(small, NOW), "validate": lambda: Snapshot.model_validate(raw_small)},
        repeats=15 if quick else 60,
        number=100,
    )
    per, best, validate = got["allocate"]["median"], got["allocate"]["best"], got["validate"]["median"]
    results["three_loads"] = {
        "decisions_per_s": round(1.0 / per),
        "best_decisions_per_s": round(1.0 / best),
        "us_per_decision": round(per * 1e6, 1),
        "validate_us": round(validate * 1e6, 1),
        "ratio_to_validate": round(per / validate, 2),
        "target_decisions_per_s": 5000,
        "meets_target": 1.0 / per >= 5000,
    }
    sizes = [10, 100, 1000] if quick else [10, 100, 1000, 10000]
    rows: dict[str, Any] = {}
    times: list[float] = []
    validates: list[float] = []
    loops: list[float] = []
    for n in sizes:
        snap = snapshot(n)
        _check(snap)
        raw = snap.model_dump()

        def touch(snap: Snapshot = snap) -> float:
            total = 0.0
            for item in snap.loads:
                total += item.state.max_current
            return total

        reps = max(3, min(40, 20000 // (n * (4 if quick else 1))))

        def decide(snap: Snapshot = snap) -> object:
            return allocate(snap, NOW)

        def validate_raw(raw: dict[str, Any] = raw) -> object:
            return Snapshot.model_validate(raw)

        got = _paired(
            {"allocate": decide, "validate": validate_raw, "loop": touch},
            repeats=reps,
            number=1,
        )
        t, v, lp = got["allocate"]["median"], got["validate"]["median"], got["loop"]["median"]
        times.append(t)
        validates.append(v)
        loops.append(lp)
        rows[str(n)] = {
            "ms": round(t * 1000, 3),
            "best_ms": round(got["allocate"]["best"] * 1000, 3),
            "validate_ms": round(v * 1000, 3),
            "loop_ms": round(lp * 1000, 4),
            "ratio_to_validate": round(t / v, 2),
            "ratio_to_loop": round(t / lp, 1),
        }
    results["sizes"] = rows
    results["growth_exponent"] = {
        "allocate": _slope([float(n) for n in sizes], times),
        "validate": _slope([float(n) for n in sizes], validates),
        "loop": _slope([float(n) for n in sizes], loops),
    }
    results["target_1000_loads_ms"] = 50
    results["meets_1000_loads_target"] = rows["1000"]["ms"] <= 50
    return results


if __name__ == "__main__":
    json.dump(run(quick="--quick" in sys.argv[1:]), sys.stdout, indent=2)
    print()
