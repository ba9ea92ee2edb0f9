"""The allocator core's input and output: ``allocate(snapshot, now) -> Allocation``.

The snapshot holds everything the decision depends on, including the memory carried between decisions
(anti-flicker timers, battery latch, smoothed surplus). The service reads that memory back from the
retained setpoints and decision it published, so any instance can take over.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from .base import Amps, Contract, LoadAmps, Phase, PositiveWatts, Text, TopicId
from .grid_limit import GridLimitInput, GridLimitState
from .load import LoadState
from .measurement import SiteMeasurement
from .setpoint import Reason
from .settings import LoadSettings, Mode, SiteSettings

#: A switching load's phase count.
PhaseCount = Literal[1, 3]


class LoadMemory(Contract):
    """What the last decision left for the next one about one load."""

    #: The per-leg current last allocated (increases ramp from here; 0 = paused).
    current: LoadAmps = 0.0
    on: bool = False
    active_since: AwareDatetime | None = None
    paused_since: AwareDatetime | None = None
    #: Since when the load's surplus (or excess) has been short of its minimum while it runs (grace timer).
    short_since: AwareDatetime | None = None
    #: The mode the last decision applied (a user's mode change overrides the anti-flicker timers).
    mode: Mode | None = None
    #: Break before make: since ``changed_at`` the load's allocation has been as high as ``lowered_from``
    #: (it may still draw that much until it is measured at its lower allocation or ``follow_time`` passed)
    #: and as low as ``raised_from`` (a load that reports no draw is assumed to draw that little until then).
    lowered_from: LoadAmps | None = None
    raised_from: LoadAmps | None = None
    changed_at: AwareDatetime | None = None
    #: Phase switching: the phase count last decided (None: its wiring), since when the other count has been
    #: wanted (the delay), and the switches of the last hour (the per-hour cap; the last one starts the pause).
    phase_count: PhaseCount | None = None
    phase_wish_since: AwareDatetime | None = None
    phase_switches: list[AwareDatetime] = Field(default_factory=list, max_length=60)


class SiteMemory(Contract):
    """What the last decision left for the next one about the site."""

    battery_full_latched: bool = False
    #: The battery reached its target SOC and has not fallen below ``target_soc - hysteresis`` since.
    battery_above_target: bool = False
    #: What the battery charged (W) when it was last seen saturated above its target — charging below its
    #: maximum while the site exported, so it could take no more; None: not saturated.
    battery_saturated_charge: PositiveWatts | None = None
    surplus_ema: dict[Phase, Amps] = Field(default_factory=dict)


class LoadInput(Contract):
    state: LoadState
    #: None: the defaults of :class:`LoadSettings` (site mode, priority 5, enabled).
    settings: LoadSettings | None = None
    memory: LoadMemory = Field(default_factory=LoadMemory)


class Snapshot(Contract):
    """Everything one decision for one site depends on."""

    settings: SiteSettings
    #: None: no measurement yet (treated as stale).
    measurement: SiteMeasurement | None = None
    loads: list[LoadInput] = Field(default_factory=list, max_length=100_000)
    memory: SiteMemory = Field(default_factory=SiteMemory)
    #: The grid operator's last signal and the site's policy for it (None: no grid-operator input).
    grid_limit: GridLimitInput | None = None


class LoadDecision(Contract):
    load: TopicId
    #: Per-leg current for continuous/EVSE/stepped loads; 0 = paused.
    current: LoadAmps = 0.0
    phases: list[Phase] = Field(default_factory=list)
    on: bool = False
    #: What an idle load would get if it started.
    available: LoadAmps | None = None
    #: The mode that applied (per-load override, schedule or site default).
    mode: Mode
    reason: Reason
    message: Text = ""
    memory: LoadMemory = Field(default_factory=LoadMemory)


class Allocation(Contract):
    """The decision for one site at one instant."""

    site: TopicId
    ts: AwareDatetime
    decisions: list[LoadDecision] = Field(default_factory=list)
    #: Pool name (physical, surplus, excess) -> per-phase amps available to loads.
    pools: dict[str, dict[Phase, Amps]] = Field(default_factory=dict)
    #: Per phase: what is left below limit - margin after the allocation.
    headroom: dict[Phase, Amps] = Field(default_factory=dict)
    #: Per phase: the house's own consumption (grid reading minus the loads' draw).
    house: dict[Phase, Amps] = Field(default_factory=dict)
    stale: bool = False
    message: Text = ""
    memory: SiteMemory = Field(default_factory=SiteMemory)
    #: The grid-operator limit in force (None: the snapshot had no grid-operator input).
    grid_limit: GridLimitState | None = None

    def decision(self, load: str) -> LoadDecision:
        for d in self.decisions:
            if d.load == load:
                return d
        raise KeyError(load)
