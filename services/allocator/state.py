"""What the allocator knows about each site: the latest inputs, the settings in force, and the memory read
back from its own retained output. Builds the :class:`Snapshot` one decision needs.

Retained state can arrive late, twice, or from another instance. Settings and memory are therefore taken
only when they are newer (by their ``ts``) than what is held, so the echo of our own publication changes
nothing and a newer one from a peer instance wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.models import (
    Calibration,
    LoadInput,
    LoadMemory,
    LoadSettings,
    LoadState,
    LoadStatus,
    Setpoint,
    SiteDecision,
    SiteMeasurement,
    SiteMemory,
    SiteSettings,
    Snapshot,
)

from .calibration import remapped
from .config import AllocatorConfig
from .schedules import active_modes, load_in_force, site_in_force


def _newer(incoming: datetime, held: datetime | None) -> bool:
    return held is None or incoming > held


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

    def input_state(self) -> LoadState | None:
        """The state the decision sees: an offline load is unavailable, whatever it said last."""
        if self.state is None:
            return None
        if not self.online and self.state.status is not LoadStatus.UNAVAILABLE:
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
        )
        entry.memory_ts = setpoint.ts
        return True

    def take_decision(self, decision: SiteDecision) -> bool:
        """Read the site memory (battery latch, smoothed surplus) back from a retained site decision."""
        if not _newer(decision.ts, self.memory_ts):
            return False
        self.memory = SiteMemory(
            battery_full_latched=decision.battery_full_latched, surplus_ema=dict(decision.surplus_ema)
        )
        self.memory_ts = decision.ts
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
    def snapshot(self, now: datetime) -> Snapshot:
        """Everything the next decision depends on, with the schedules in force at ``now`` applied."""
        modes = active_modes(self.settings.schedules, now)
        loads = []
        for load_id in sorted(self.loads):
            entry = self.loads[load_id]
            state = entry.input_state()
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
        )


class Registry:
    """Every site seen under the root, created on first sight with the configured defaults."""

    def __init__(self, config: AllocatorConfig) -> None:
        self.config = config
        self.sites: dict[str, SiteState] = {}
        for site in config.sites:
            if config.serves(site):
                self.site(site).served = True

    def site(self, site: str) -> SiteState:
        state = self.sites.get(site)
        if state is None:
            state = self.sites[site] = SiteState(site, self.config.site_defaults(site))
        return state

    def load(self, site: str, load: str) -> LoadEntry:
        """A load entry, created with its configured default settings."""
        state = self.site(site)
        entry = state.loads.get(load)
        if entry is None:
            entry = state.load(load)
            entry.settings = self.config.load_defaults(site, load)
        return entry
