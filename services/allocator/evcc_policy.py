"""A comparison allocator: evcc's PV-mode timers with their defaults, as a pure function of the same snapshot.

Used only by the closed-loop harness and ``python -m bench quality`` to put a number beside ours (starts per
load, self-consumption on the same simulated day); the service never runs it. What it models of evcc's
documented loadpoint behaviour (https://docs.evcc.io/en/reference/configuration/loadpoints, ``enable`` and
``disable``): a paused PV load starts once the surplus has covered its minimum (``enable.threshold`` 0 W)
for ``enable.delay`` (1 min); a running one follows the surplus at once, keeps its minimum while the surplus
is short, and stops once it has been short (import above ``disable.threshold``, 0 W) for ``disable.delay``
(3 min). No smoothing, no ramp, no minimum run or pause beyond those delays.

What it shares with ours, so that only the start/stop policy differs: the surplus (export if the loads drew
nothing, plus the battery's charge once it is at its target SOC, minus its discharge), Standard and
Continuous loads at their maximum within the fuse, Solar Priority at least its minimum, Excess loads treated
as PV loads after the others, every load within the fuse and its circuits on each of its phases.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from shared.models.allocation import Snapshot
from shared.models.load import LoadKind, LoadStatus
from shared.models.settings import Mode


@dataclass(frozen=True, slots=True)
class EvccTimers:
    enable_delay: float = 60.0
    disable_delay: float = 180.0
    enable_threshold_w: float = 0.0
    disable_threshold_w: float = 0.0


@dataclass(frozen=True, slots=True)
class EvccLoad:
    """What the policy remembers about one load: running or not, and since when its condition holds."""

    charging: bool = False
    since: datetime | None = None


GRID_MODES = frozenset({Mode.STANDARD, Mode.CONTINUOUS})
ORDER = {Mode.STANDARD: 0, Mode.CONTINUOUS: 0, Mode.SOLAR_PRIORITY: 1, Mode.SOLAR_ONLY: 2, Mode.EXCESS: 3}


def evcc_decide(
    snapshot: Snapshot, now: datetime, memory: dict[str, EvccLoad], timers: EvccTimers = EvccTimers()
) -> tuple[dict[str, float], dict[str, EvccLoad]]:
    """The per-leg current of every load and the policy's memory for the next call."""
    settings = snapshot.settings
    voltage = settings.voltage
    m = snapshot.measurement
    limit = settings.fuse_limit - settings.margin
    grid = {p: r.value for p, r in m.grid_current.items()} if m is not None else {}
    house = dict(grid)
    for item in snapshot.loads:
        for p, amps in item.state.draw.items():
            if p in house:
                house[p] -= amps
    soc = m.battery_soc.value if m is not None and m.battery_soc is not None else None
    battery_w = m.battery_power.value if m is not None and m.battery_power is not None else 0.0
    bs = settings.battery
    above_target = bs is None or (soc is not None and soc >= bs.target_soc)
    available = -sum(house.values()) * voltage - (battery_w if above_target else max(0.0, battery_w))
    headroom = {p: limit - h for p, h in house.items()}
    parents = {c.id: c.parent for c in settings.circuits}
    circuit_left = {c.id: dict.fromkeys(settings.phases, c.limit - settings.margin) for c in settings.circuits}

    def mode_of(index: int) -> Mode:
        ls = snapshot.loads[index].settings
        return ls.mode if ls is not None and ls.mode is not None else settings.mode

    def priority_of(index: int) -> int:
        ls = snapshot.loads[index].settings
        return ls.priority if ls is not None else 5

    order = sorted(
        range(len(snapshot.loads)),
        key=lambda i: (ORDER.get(mode_of(i), 9), priority_of(i), snapshot.loads[i].state.load),
    )
    out: dict[str, float] = {}
    new_memory: dict[str, EvccLoad] = {}
    for i in order:
        item = snapshot.loads[i]
        state = item.state
        mode = mode_of(i)
        mem = memory.get(state.load, EvccLoad())
        legs = [state.legs[leg] for leg in state.phases_in_use]
        if state.status is not LoadStatus.ACTIVE or mode is Mode.OFF or not legs:
            out[state.load], new_memory[state.load] = 0.0, EvccLoad()
            continue
        if state.kind is LoadKind.ONOFF:
            rated = state.rated_power or 0.0
            lo = hi = rated / (voltage * len(legs)) if rated else state.max_current
        else:
            lo, hi = state.min_current, state.max_current
            if item.settings is not None:
                if item.settings.min_current is not None:
                    lo = max(lo, item.settings.min_current)
                if item.settings.max_current is not None:
                    hi = min(hi, item.settings.max_current)
        chain: list[str] = []
        circuit = state.circuit
        while circuit is not None and circuit in parents and circuit not in chain:
            chain.append(circuit)
            circuit = parents[circuit]
        room = min(headroom.get(p, 0.0) / legs.count(p) for p in set(legs))
        for c in chain:
            room = min(room, *(circuit_left[c].get(p, 0.0) / legs.count(p) for p in set(legs)))
        hi = min(hi, room)
        if hi + 1e-9 < lo:
            out[state.load], new_memory[state.load] = 0.0, EvccLoad()
            continue
        surplus = available / (voltage * len(legs))
        if mode in GRID_MODES:
            amps, mem = hi, EvccLoad(charging=True)
        elif mode is Mode.SOLAR_PRIORITY:
            amps, mem = max(lo, min(hi, surplus)), EvccLoad(charging=True)
        else:
            amps, mem = _pv(mem, surplus, lo, hi, voltage * len(legs), now, timers)
        if state.kind is LoadKind.ONOFF and amps > 0:
            amps = lo
        out[state.load], new_memory[state.load] = amps, mem
        for p in legs:
            headroom[p] = headroom.get(p, 0.0) - amps
            for c in chain:
                circuit_left[c][p] = circuit_left[c].get(p, 0.0) - amps
        available -= amps * voltage * len(legs)
    return out, new_memory


def _pv(
    mem: EvccLoad, surplus: float, lo: float, hi: float, watts_per_amp: float, now: datetime, timers: EvccTimers
) -> tuple[float, EvccLoad]:
    """One PV-mode load: enable after the delay, follow the surplus, disable after the delay."""
    if mem.charging:
        if (lo - surplus) * watts_per_amp <= timers.disable_threshold_w:
            return min(hi, max(lo, surplus)), replace(mem, since=None)
        since = mem.since or now
        if (now - since).total_seconds() >= timers.disable_delay:
            return 0.0, EvccLoad()
        return lo, EvccLoad(charging=True, since=since)
    if (surplus - lo) * watts_per_amp >= timers.enable_threshold_w:
        since = mem.since or now
        if (now - since).total_seconds() >= timers.enable_delay:
            return min(hi, max(lo, surplus)), EvccLoad(charging=True)
        return 0.0, EvccLoad(since=since)
    return 0.0, EvccLoad()
