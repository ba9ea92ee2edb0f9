"""What happened during a run: energy per load and source, time series for the plots, start/stop
cycles, and the allocator's setpoints as they were published (to check the anti-flicker rules).

The time series has one row per ``sample_interval`` (a *bucket*); each fast signal (phase currents, solar,
consumption, grid, battery, each load's current) is kept as the ``[lowest, highest]`` value of every
physics step in the bucket, so a spike of a few seconds survives into the charts: the highest phase current
in the series is the peak the fuse model reports. Slow signals (battery SOC, tank temperature, setpoints)
are the bucket's last value.

Grid energy of a Solar Only load is counted at the margin: the import the site had minus the import it
would have had without that load (``max(0, P) - max(0, P - P_load)``), so import caused by other loads is
not blamed on it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.models import Mode, PriceForecast, Reason, Setpoint

from .scenario import Scenario
from .site import Site, SiteState
from .tariff import price_at, price_forecast

#: A load counts as running above this current (A per phase) or power (W).
RUNNING_AMPS = 1.0
#: Pauses and stops the anti-flicker timers govern: those for want of surplus. A cut for safety, a
#: user's mode change, an idle or unavailable load are not flicker.
SURPLUS_REASONS = frozenset({Reason.WAITING_FOR_SURPLUS, Reason.NO_EXCESS, Reason.SURPLUS_LIMIT,
                             Reason.BATTERY_FIRST, Reason.MIN_PAUSE})


@dataclass(slots=True)
class SetpointEvent:
    t: float
    load: str
    running: bool
    current: float
    reason: str
    mode: str


@dataclass(slots=True)
class LoadTally:
    energy_wh: float = 0.0
    grid_wh: float = 0.0
    starts: int = 0
    running: bool = False
    peak_current: float = 0.0
    #: What the load's energy cost at the scenario's price curve (its ``prices``), in its currency.
    cost: float = 0.0


@dataclass(slots=True)
class Recorder:
    scenario: Scenario
    solar_only: set[str]
    start: datetime
    series: list[dict[str, Any]] = field(default_factory=list)
    loads: dict[str, LoadTally] = field(default_factory=dict)
    setpoints: list[SetpointEvent] = field(default_factory=list)
    latest: dict[str, Setpoint] = field(default_factory=dict)
    energy: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("grid_import", "grid_export", "solar", "house", "battery_charge", "battery_discharge"), 0.0))
    _next_sample: float = 0.0
    #: The open bucket: per signal, the lowest and highest value since the last row.
    _low: dict[str, float] = field(default_factory=dict)
    _high: dict[str, float] = field(default_factory=dict)
    _last: SiteState | None = None
    _limit: float = 0.0
    _prices: PriceForecast | None = None

    def __post_init__(self) -> None:
        self._prices = price_forecast(self.scenario)

    def step(self, state: SiteState, dt: float) -> None:
        """Integrate one physics step."""
        h = dt / 3600.0
        grid = sum(state.grid_power.values())
        e = self.energy
        e["grid_import"] += max(0.0, grid) * h
        e["grid_export"] += max(0.0, -grid) * h
        e["solar"] += state.solar * h
        e["house"] += sum(state.house.values()) * h
        e["battery_discharge"] += max(0.0, state.battery_power) * h
        e["battery_charge"] += max(0.0, -state.battery_power) * h
        price = price_at(self._prices, self.start + timedelta(seconds=state.t)) if self._prices else None
        for load, watts in state.loads.items():
            tally = self.loads.setdefault(load, LoadTally())
            tally.energy_wh += watts * h
            if price is not None:
                tally.cost += watts * h / 1000.0 * price
            amps = state.load_current.get(load, 0.0)
            tally.peak_current = max(tally.peak_current, amps)
            running = amps >= RUNNING_AMPS
            if running and not tally.running:
                tally.starts += 1
            tally.running = running
            if load in self.solar_only:
                tally.grid_wh += (max(0.0, grid) - max(0.0, grid - watts)) * h

    def sample(self, state: SiteState, limit: float) -> None:
        """Widen the open bucket with ``state``; close it into a row once ``sample_interval`` has passed."""
        self._limit = limit
        for key, value in _signals(state).items():
            self._low[key] = min(self._low.get(key, value), value)
            self._high[key] = max(self._high.get(key, value), value)
        self._last = state
        if state.t >= self._next_sample:
            self._next_sample = state.t + self.scenario.timing.sample_interval
            self.close_bucket()

    def close_bucket(self) -> None:
        """Write the open bucket as a row (at the end of a run: the last, shorter bucket)."""
        state = self._last
        if state is None or not self._low:
            return

        def span(key: str, places: int) -> list[float]:
            return [round(self._low[key], places), round(self._high[key], places)]

        self.series.append({
            "t": round(state.t, 1),
            "current": {p: span(f"current/{p}", 2) for p in state.grid_current},
            "limit": self._limit,
            "solar": span("solar", 1),
            "consumption": span("consumption", 1),
            "grid": span("grid", 1),
            "battery": span("battery", 1),
            "soc": None if state.battery_soc is None else round(state.battery_soc, 2),
            "loads": {k: span(f"load/{k}", 2) for k in state.load_current},
            "setpoints": {k: (sp.current if sp.current or not sp.on else -1.0) for k, sp in self.latest.items()},
            "boiler_temperature": None if state.boiler_temperature is None else round(state.boiler_temperature, 2),
        })
        self._low, self._high = {}, {}

    def setpoint(self, sp: Setpoint) -> None:
        """A setpoint the allocator published."""
        self.latest[sp.load] = sp
        t = (sp.ts - self.start).total_seconds()
        running = sp.current > 0 or sp.on
        history = [e for e in self.setpoints if e.load == sp.load]
        if history and history[-1].running == running:
            return
        self.setpoints.append(SetpointEvent(t, sp.load, running, sp.current, str(sp.reason), str(sp.mode)))

    def kpis(self, site: Site, min_run: float, min_pause: float, missing: list[str]) -> dict[str, Any]:
        """The run's KPIs (and the series' last, open bucket closed)."""
        self.close_bucket()
        e = self.energy
        self_consumed = max(0.0, e["solar"] - e["grid_export"])
        load_kpis = {}
        for load, tally in self.loads.items():
            entry: dict[str, Any] = {"energy_kwh": round(tally.energy_wh / 1000, 3), "starts": tally.starts,
                                     "peak_current": round(tally.peak_current, 2)}
            if load in self.solar_only:
                entry["grid_kwh"] = round(tally.grid_wh / 1000, 3)
                entry["grid_share"] = round(tally.grid_wh / tally.energy_wh, 4) if tally.energy_wh > 0 else 0.0
            if self._prices is not None:
                entry["cost"] = round(tally.cost, 3)
            entry["setpoint_cycles"] = sum(1 for ev in self.setpoints if ev.load == load and ev.running)
            entry["flicker_violations"] = flicker_violations(self.setpoints, load, min_run, min_pause)
            load_kpis[load] = entry
        fuse = site.fuse.summary()
        return {
            "scenario": self.scenario.name,
            "simulated_seconds": round(site.t, 1),
            "energy_kwh": {k: round(v / 1000, 3) for k, v in e.items()},
            "solar_self_consumption": round(self_consumed / e["solar"], 4) if e["solar"] > 0 else None,
            "loads": load_kpis,
            "fuse": fuse,
            "circuits": {cid: f.summary() for cid, f in site.circuits.items()},
            "peak_phase_current": round(max((f.peak for f in site.fuse.phases.values()), default=0.0), 2),
            "limit": self.scenario.grid.fuse,
            "overload_seconds": round(site.fuse.overload_seconds, 1),
            "trips": site.fuse.trips + sum(f.trips for f in site.circuits.values()),
            "battery_soc_end": None if site.battery is None else round(site.battery.soc, 2),
            "missing": missing,
        }


def _signals(state: SiteState) -> dict[str, float]:
    """The fast signals a bucket keeps the range of, by name."""
    signals = {f"current/{p}": a for p, a in state.grid_current.items()}
    signals |= {f"load/{k}": a for k, a in state.load_current.items()}
    signals["solar"] = state.solar
    signals["consumption"] = sum(state.house.values()) + sum(state.loads.values())
    signals["grid"] = sum(state.grid_power.values())
    signals["battery"] = state.battery_power
    return signals


def flicker_violations(events: list[SetpointEvent], load: str, min_run: float, min_pause: float,
                       tolerance: float = 0.1) -> list[str]:
    """Setpoint transitions of ``load`` that break the anti-flicker rules for want of surplus: a start on
    surplus stopped before ``min_run``, a surplus pause ended before ``min_pause`` (``tolerance`` is the
    fraction of slack allowed for the publishing delay). A load's first pause, before it ever ran, is its
    starting state, not a pause the timers govern."""
    mine = [e for e in events if e.load == load]
    problems: list[str] = []
    for i, (before, after) in enumerate(itertools.pairwise(mine)):
        held = after.t - before.t
        if before.running and not after.running and after.reason in SURPLUS_REASONS \
                and before.mode in (Mode.SOLAR_ONLY, Mode.SOLAR_PRIORITY, Mode.EXCESS) \
                and held < min_run * (1 - tolerance):
            problems.append(f"t={after.t:.0f}s stopped ({after.reason}) after running {held:.0f}s < min_run")
        if not before.running and after.running and before.reason in SURPLUS_REASONS and i > 0 \
                and held < min_pause * (1 - tolerance):
            problems.append(f"t={after.t:.0f}s resumed after a {before.reason} pause of {held:.0f}s < min_pause")
    return problems
