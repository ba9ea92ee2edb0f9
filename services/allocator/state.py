"""What the allocator knows about each site: the latest inputs, the settings in force, and the memory read
back from its own retained output. Builds the :class:`Snapshot` one decision needs.

Retained state can arrive late, twice, or from another instance. Settings and memory are therefore taken
only when they are newer (by their ``ts``) than what is held, so the echo of our own publication changes
nothing and a newer one from a peer instance wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from shared.models import (
    Calibration,
    GridLimitSignal,
    LoadInput,
    LoadMemory,
    LoadPlan,
    LoadSettings,
    LoadState,
    LoadStatus,
    Mode,
    PriceForecast,
    PvForecast,
    Setpoint,
    SiteDecision,
    SiteMeasurement,
    SiteMemory,
    SiteSettings,
    Snapshot,
)

from .calibration import remapped
from .config import AllocatorConfig
from .grid_limit import GridLimitConfig, decision_input
from .planner import active_slot
from .schedules import ActiveModes, active_modes, load_in_force, site_in_force


def _newer(incoming: datetime, held: datetime | None) -> bool:
    return held is None or incoming > held


@dataclass(frozen=True, slots=True)
class Liveness:
    """What makes a load unavailable whatever its state says: its age, and its adapter service being gone."""

    #: The decision's time on the allocator's clock.
    now: datetime
    #: A state older than this (s) is not counted on.
    stale_after: float
    #: Why the service that publishes the load states is gone (None while it is not known to be).
    service_gone: str | None = None


class Unavailable(NamedTuple):
    """Why a load is unavailable against its own word: a short code and a sentence."""

    code: str
    why: str


@dataclass(slots=True)
class LoadEntry:
    """One load of a site: its adapter's state and availability, its settings, and its decision memory."""

    state: LoadState | None = None
    online: bool = True
    settings: LoadSettings | None = None
    #: ``ts`` of retained or ``/set`` settings; None while ``settings`` are the configured defaults.
    settings_ts: datetime | None = None
    memory: LoadMemory = field(default_factory=LoadMemory)
    memory_ts: datetime | None = None
    #: A state of this load arrived since the start (a ``/set`` may name it).
    seen: bool = False
    #: Why the latest state is not trusted (stamped in the future), None when it is.
    untrusted: str | None = None
    #: The load's departure plan (set over ``plan/set``, read back from its retained ``plan``), and when it
    #: was last worked out (None: due).
    plan: LoadPlan | None = None
    planned_at: datetime | None = None
    #: The SOC the plan was last worked out with.
    planned_soc: float | None = None

    def unavailable_because(self, liveness: Liveness | None) -> Unavailable | None:
        """Why the load counts as unavailable although its state does not say so; None when it does not."""
        if self.state is None or self.state.status is LoadStatus.UNAVAILABLE:
            return None
        if not self.online:
            return Unavailable("load_offline", "its availability is offline")
        if liveness is None:
            return None
        if liveness.service_gone is not None:
            return Unavailable("load_service_offline", liveness.service_gone)
        if self.untrusted is not None:
            return Unavailable("future_timestamp", self.untrusted)
        age = (liveness.now - self.state.ts).total_seconds()
        if age > liveness.stale_after:
            return Unavailable("load_stale", f"its latest state is {age:.0f} s old (a state counts for "
                                             f"{liveness.stale_after:g} s)")
        return None

    def input_state(self, liveness: Liveness | None = None) -> LoadState | None:
        """The state the decision sees: a load that is offline, silent too long or whose adapter service is
        gone is unavailable, whatever it said last."""
        if self.state is None:
            return None
        if self.unavailable_because(liveness) is not None:
            return self.state.model_copy(update={"status": LoadStatus.UNAVAILABLE})
        return self.state


@dataclass(slots=True)
class SiteState:
    site: str
    settings: SiteSettings
    #: ``ts`` of retained or ``/set`` settings; None while ``settings`` are the configured defaults.
    settings_ts: datetime | None = None
    measurement: SiteMeasurement | None = None
    loads: dict[str, LoadEntry] = field(default_factory=dict)
    memory: SiteMemory = field(default_factory=SiteMemory)
    memory_ts: datetime | None = None
    #: Whether the site has inputs or settings of its own (not only memory read back): then it is served.
    served: bool = False
    #: The detector's latest calibration, and the last one published (with when it went out).
    calibration: Calibration | None = None
    calibration_published: Calibration | None = None
    calibration_published_at: datetime | None = None
    #: The installation's settings from the config: the limits no message may raise (see ``limits.py``).
    installation: SiteSettings = field(default_factory=lambda: SiteSettings(site="unset"))
    #: Load id -> the code of the unavailability last reported for it.
    reported_unavailable: dict[str, str] = field(default_factory=dict)
    #: The import price and solar forecasts for departure plans, and whether an input of the plans changed.
    prices: PriceForecast | None = None
    pv_forecast: PvForecast | None = None
    replan: bool = False
    #: The grid operator's last signal (heard on our clock), and the site's policy for it from the config.
    grid_signal: GridLimitSignal | None = None
    grid_config: GridLimitConfig | None = None

    # -- inputs ------------------------------------------------------------------------------------
    def load(self, load: str) -> LoadEntry:
        entry = self.loads.get(load)
        if entry is None:
            entry = self.loads[load] = LoadEntry()
        return entry

    def take_settings(self, settings: SiteSettings) -> bool:
        """Take retained or newly set site settings if newer than those held."""
        if not _newer(settings.ts, self.settings_ts):
            return False
        self.settings, self.settings_ts = settings, settings.ts
        return True

    def take_load_settings(self, load: str, settings: LoadSettings) -> bool:
        entry = self.load(load)
        if not _newer(settings.ts, entry.settings_ts):
            return False
        entry.settings, entry.settings_ts = settings, settings.ts
        return True

    def take_setpoint(self, setpoint: Setpoint) -> bool:
        """Read a load's decision memory back from a retained setpoint, if newer than the memory held."""
        entry = self.load(setpoint.load)
        if not _newer(setpoint.ts, entry.memory_ts):
            return False
        entry.memory = LoadMemory(
            current=setpoint.current,
            on=setpoint.on,
            active_since=setpoint.active_since,
            paused_since=setpoint.paused_since,
            short_since=setpoint.short_since,
            lowered_from=setpoint.lowered_from,
            raised_from=setpoint.raised_from,
            changed_at=setpoint.changed_at,
            mode=setpoint.mode,
            phase_count=setpoint.phase_count,
            phase_wish_since=setpoint.phase_wish_since,
            phase_switches=list(setpoint.phase_switches),
        )
        entry.memory_ts = setpoint.ts
        return True

    def take_plan(self, plan: LoadPlan) -> bool:
        """Read a load's plan back from its retained topic (after a restart, or another instance's), if newer."""
        entry = self.load(plan.load)
        if entry.plan is not None and plan.ts <= entry.plan.ts:
            return False
        entry.plan, entry.planned_at = plan, None
        return True

    def planned(self, now: datetime) -> dict[str, LoadPlan]:
        """Load id -> its plan, for the loads ``now`` falls in a planned slot of."""
        return {load: entry.plan for load, entry in self.loads.items()
                if entry.plan is not None and active_slot(entry.plan, now) is not None}

    def take_decision(self, decision: SiteDecision) -> bool:
        """Read the site memory (battery latch, smoothed surplus) back from a retained site decision."""
        if not _newer(decision.ts, self.memory_ts):
            return False
        self.memory = SiteMemory(
            battery_full_latched=decision.battery_full_latched,
            battery_above_target=decision.battery_above_target,
            battery_saturated_charge=decision.battery_saturated_charge,
            surplus_ema=dict(decision.surplus_ema),
        )
        self.memory_ts = decision.ts
        return True

    def take_grid_signal(self, signal: GridLimitSignal) -> bool:
        """Take the grid operator's signal if heard after the one held (a restored one may be older)."""
        if self.grid_signal is not None and signal.heard < self.grid_signal.heard:
            return False
        self.grid_signal = signal
        return True

    def take_calibration(self, calibration: Calibration) -> bool:
        """Read the detector's memory back from a retained calibration, if newer than the one held."""
        if self.calibration is not None and calibration.ts <= self.calibration.ts:
            return False
        self.calibration = self.calibration_published = calibration
        return True

    def remember(self, memory: SiteMemory, loads: dict[str, LoadMemory], ts: datetime) -> None:
        """Keep what a decision of ours left, stamped with the ``ts`` of the messages that publish it."""
        self.memory, self.memory_ts = memory, ts
        for load, load_memory in loads.items():
            entry = self.load(load)
            entry.memory, entry.memory_ts = load_memory, ts

    # -- the decision's input ------------------------------------------------------------------------
    def unavailable(self, liveness: Liveness) -> dict[str, Unavailable]:
        """Load id -> why it is passed to the core as unavailable against what its state says."""
        found = {}
        for load_id, entry in self.loads.items():
            why = entry.unavailable_because(liveness)
            if why is not None:
                found[load_id] = why
        return found

    def snapshot(self, now: datetime, liveness: Liveness | None = None) -> Snapshot:
        """Everything the next decision depends on, with the schedules in force at ``now`` applied; loads
        judged by ``liveness`` (their age and their adapter service) when given."""
        modes = active_modes(self.settings.schedules, now)
        planned = self.planned(now)
        if planned:
            # in a planned slot the load charges as Standard, whatever its mode or a schedule says
            modes = ActiveModes(modes.site, {**modes.loads, **dict.fromkeys(planned, Mode.STANDARD)})
        loads = []
        for load_id in sorted(self.loads):
            entry = self.loads[load_id]
            state = entry.input_state(liveness)
            if state is None:
                continue
            settings = load_in_force(self.site, load_id, entry.settings, modes)
            if settings is not None and settings.auto_phase_map and self.calibration is not None:
                detected = self.calibration.loads.get(load_id)
                if detected is not None and detected.legs:
                    state = remapped(state, detected.legs)
            loads.append(LoadInput(state=state, settings=settings, memory=entry.memory))
        return Snapshot(
            settings=site_in_force(self.settings, modes),
            measurement=self.measurement,
            loads=loads,
            memory=self.memory,
            grid_limit=decision_input(self.grid_config, self.grid_signal),
        )


class Registry:
    """The sites this instance serves (configured ones only: nothing published can add one), created with
    their configured settings."""

    def __init__(self, config: AllocatorConfig) -> None:
        self.config = config
        self.sites: dict[str, SiteState] = {}
        for site in config.sites:
            if config.serves(site):
                self.site(site).served = True

    def site(self, site: str) -> SiteState:
        state = self.sites.get(site)
        if state is None:
            defaults = self.config.site_defaults(site)
            state = self.sites[site] = SiteState(site, defaults, installation=defaults)
            state.grid_config = self.config.grid_limits.get(site)
        return state

    def served(self, site: str) -> SiteState | None:
        """The state of a site this instance serves, None for any other (nothing is created for it)."""
        return self.site(site) if self.config.serves(site) else None

    def load(self, site: str, load: str) -> LoadEntry:
        """A load entry, created with its configured default settings."""
        state = self.site(site)
        entry = state.loads.get(load)
        if entry is None:
            entry = state.load(load)
            entry.settings = self.config.load_defaults(site, load)
        return entry
