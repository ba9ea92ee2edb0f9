"""Small builders for allocator scenarios: a site, a measurement, loads and their memory in one line each.

Sites built here switch the ramp and the surplus smoothing off unless a test passes its own ``timers``, so a
scenario's expected amps show the allocation rule it is about; the stability scenarios set timers explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.models import (
    BatterySettings,
    Circuit,
    CurrentReading,
    Leg,
    LoadKind,
    LoadMemory,
    LoadSettings,
    LoadState,
    LoadStatus,
    Mode,
    PercentReading,
    Phase,
    PowerReading,
    Reason,
    SiteMeasurement,
    SiteSettings,
    Strategy,
    Timers,
)
from shared.models.allocation import LoadInput, SiteMemory, Snapshot
from shared.models.grid_limit import GridLimitInput

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SITE = "home"
#: No ramp, no smoothing: the allocation rules alone.
PLAIN_TIMERS = Timers(ramp_step=1000.0, surplus_smoothing=1.0, surplus_dead_band=0.0)
LEGS = (Leg.L1, Leg.L2, Leg.L3)


def ago(seconds: float | None) -> datetime | None:
    return None if seconds is None else NOW - timedelta(seconds=seconds)


def site(
    phases: str = "ABC",
    fuse: float = 25.0,
    margin: float = 1.0,
    strategy: Strategy = Strategy.PRIORITY,
    mode: Mode = Mode.STANDARD,
    battery: BatterySettings | None = None,
    circuits: tuple[tuple[str, float, str | None], ...] = (),
    timers: Timers = PLAIN_TIMERS,
    **extra: Any,
) -> SiteSettings:
    """``circuits``: (id, limit, parent) triples."""
    return SiteSettings(
        site=SITE,
        ts=NOW,
        phases=[Phase(p) for p in phases],
        fuse_limit=fuse,
        margin=margin,
        strategy=strategy,
        mode=mode,
        battery=battery,
        circuits=[Circuit(id=c, limit=limit, parent=parent) for c, limit, parent in circuits],
        timers=timers,
        **extra,
    )


def grid(
    *amps: float,
    phases: str = "ABC",
    age: float = 0.0,
    soc: float | None = None,
    battery: float | None = None,
    solar: float | None = None,
    stale: str = "",
    stale_age: float = 60.0,
) -> SiteMeasurement:
    """Grid current per phase in the order of ``phases`` (import +); ``stale``: phases whose reading is old.
    ``battery``: W, discharge +; ``soc``: %."""
    ts = NOW - timedelta(seconds=age)

    def reading(p: str, value: float) -> CurrentReading:
        return CurrentReading(ts=NOW - timedelta(seconds=stale_age) if p in stale else ts, value=value)

    return SiteMeasurement(
        site=SITE,
        ts=ts,
        grid_current={Phase(p): reading(p, float(a)) for p, a in zip(phases, amps, strict=False)},
        battery_soc=None if soc is None else PercentReading(ts=ts, value=soc),
        battery_power=None if battery is None else PowerReading(ts=ts, value=battery),
        solar_power=None if solar is None else PowerReading(ts=ts, value=solar),
    )


def grid1(amps: float, **kw: Any) -> SiteMeasurement:
    """A 1-phase site's measurement (phase A)."""
    return grid(amps, phases="A", **kw)


def mem(
    current: float = 0.0,
    active: float | None = None,
    paused: float | None = None,
    short: float | None = None,
    mode: Mode | None = None,
    lowered: float | None = None,
    raised: float | None = None,
    changed: float | None = None,
) -> LoadMemory:
    """What the previous decision left: times are seconds before NOW. ``lowered``/``raised``: the allocation
    it was lowered/raised from ``changed`` seconds ago (break before make)."""
    return LoadMemory(
        current=current,
        on=current > 0,
        active_since=ago(active),
        paused_since=ago(paused),
        short_since=ago(short),
        mode=mode,
        lowered_from=lowered,
        raised_from=raised,
        changed_at=ago(changed),
    )


def load(
    name: str,
    kind: LoadKind = LoadKind.EVSE,
    on: str = "ABC",
    lo: float = 6.0,
    hi: float = 16.0,
    draw: float | dict[str, float] | None = 0.0,
    mode: Mode | None = None,
    prio: int = 5,
    status: LoadStatus = LoadStatus.ACTIVE,
    circuit: str | None = None,
    memory: LoadMemory | None = None,
    must_run: bool = False,
    enabled: bool = True,
    rated: float | None = None,
    steps: tuple[float, ...] = (),
    set_lo: float | None = None,
    set_hi: float | None = None,
    age: float = 0.0,
    fallback: float | None = None,
) -> LoadInput:
    """``on``: the site phases of L1, L2, L3 in use ("B" = a 1-phase load with L1 on B, "BCA" = rotated).
    ``draw``: per-leg amps now on each of its phases (measured, 0 A by default), a per-phase dict, or None: it
    reports no draw. ``age``: seconds its state is old (negative: from the future). ``fallback``: per-leg
    current it draws on its own when uncontrolled."""
    legs = {LEGS[i]: Phase(p) for i, p in enumerate(on)}
    if isinstance(draw, dict):
        draws = {Phase(p): float(a) for p, a in draw.items()}
    elif draw is None:
        draws = {}
    else:
        draws = {Phase(p): float(draw) for p in on}
    state = LoadState(
        site=SITE,
        load=name,
        kind=kind,
        ts=NOW - timedelta(seconds=age),
        legs=legs,
        phases_in_use=list(legs),
        min_current=lo,
        max_current=hi,
        rated_power=rated,
        steps=list(steps),
        draw=draws,
        fallback_current=fallback,
        status=status,
        must_run=must_run,
        circuit=circuit,
    )
    settings = None
    if mode is not None or prio != 5 or not enabled or set_lo is not None or set_hi is not None:
        settings = LoadSettings(
            site=SITE,
            load=name,
            ts=NOW,
            mode=mode,
            priority=prio,
            enabled=enabled,
            min_current=set_lo,
            max_current=set_hi,
        )
    return LoadInput(state=state, settings=settings, memory=memory or LoadMemory())


def ev(name: str, on: str = "ABC", lo: float = 6.0, hi: float = 16.0, **kw: Any) -> LoadInput:
    return load(name, LoadKind.EVSE, on=on, lo=lo, hi=hi, **kw)


def plug(name: str, watts: float, on: str = "A", **kw: Any) -> LoadInput:
    return load(name, LoadKind.ONOFF, on=on, lo=0.0, hi=0.0, rated=watts, **kw)


def stepped(name: str, steps: tuple[float, ...], on: str = "A", **kw: Any) -> LoadInput:
    return load(name, LoadKind.STEPPED, on=on, lo=0.0, hi=max(steps), steps=steps, **kw)


def boiler(name: str, hi: float, on: str = "A", lo: float = 0.0, **kw: Any) -> LoadInput:
    return load(name, LoadKind.CONTINUOUS, on=on, lo=lo, hi=hi, **kw)


@dataclass
class Scenario:
    story: str
    site: SiteSettings
    measurement: SiteMeasurement | None
    loads: list[LoadInput]
    #: Expected per-leg amps per load id.
    expect: dict[str, float]
    reasons: dict[str, Reason] = field(default_factory=dict)
    #: Expected ``available`` of idle loads (None: no figure).
    available: dict[str, float | None] = field(default_factory=dict)
    memory: SiteMemory = field(default_factory=SiteMemory)
    now: datetime = NOW
    #: The grid operator's signal and policy (see ``test_grid_limit.operator``).
    grid_limit: GridLimitInput | None = None

    def snapshot(self) -> Snapshot:
        return Snapshot(settings=self.site, measurement=self.measurement, loads=self.loads, memory=self.memory,
                        grid_limit=self.grid_limit)


def battery(
    target: float = 80.0, max_charge: float | None = 5000.0, max_discharge: float | None = None
) -> BatterySettings:
    return BatterySettings(
        min_soc=10.0, target_soc=target, max_charge_power=max_charge, max_discharge_power=max_discharge
    )
