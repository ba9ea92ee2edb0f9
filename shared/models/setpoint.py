"""What the allocator decides: one setpoint per load and one summary per site."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from .base import Amps, LoadAmps, Message, Phase, PositiveWatts, Text, TopicId
from .settings import Mode


class Reason(StrEnum):
    """Why a load got what it got."""

    OK = "ok"  # got what it asked for
    FUSE_LIMIT = "fuse_limit"
    IMPORT_LIMIT = "import_limit"
    CIRCUIT_LIMIT = "circuit_limit"
    IMBALANCE_LIMIT = "imbalance_limit"
    BELOW_MINIMUM = "below_minimum"
    WAITING_FOR_SURPLUS = "waiting_for_surplus"
    SURPLUS_LIMIT = "surplus_limit"
    BATTERY_FIRST = "battery_first"
    NO_EXCESS = "no_excess"
    OFF = "off"
    DISABLED = "disabled"
    IDLE = "idle"
    UNAVAILABLE = "unavailable"
    STALE_DATA = "stale_data"
    MIN_RUN = "min_run"
    MIN_PAUSE = "min_pause"
    GRACE = "grace"
    RAMP = "ramp"
    MUST_RUN = "must_run"
    PLANNED_CHARGING = "planned_charging"  # in a slot of its departure plan (docs/plans.md)
    #: Break before make: an increase waits until the loads lowered on its phases follow their lower setpoints.
    AWAITING_FOLLOW = "awaiting_follow"
    GRID_OPERATOR_LIMIT = "grid_operator_limit"  # a grid operator's limit (§14a EnWG and the like)
    PHASE_SWITCH = "phase_switch"  # paused while it switches between 1 and 3 phases


class Setpoint(Message):
    """Retained on ``<site>/load/<load>/setpoint``: what the load may draw until ``valid_until``."""

    site: TopicId
    load: TopicId
    #: Per-leg current limit for continuous/EVSE/stepped loads; 0 means paused.
    current: LoadAmps = 0.0
    #: The site phases the current applies to.
    phases: list[Phase] = Field(default_factory=list)
    #: On/off loads: whether the relay may be on.
    on: bool = False
    #: What the load would get if it started (idle loads).
    available: LoadAmps | None = None
    power: PositiveWatts | None = None
    mode: Mode
    reason: Reason
    message: Text = ""
    valid_until: AwareDatetime
    #: Anti-flicker memory, read back by any allocator instance.
    active_since: AwareDatetime | None = None
    paused_since: AwareDatetime | None = None
    #: Since when a running load's surplus has been short of its minimum (min_run/grace memory).
    short_since: AwareDatetime | None = None
    #: Break-before-make memory (see ``LoadMemory``): the allocation it was lowered from / raised from since
    #: ``changed_at``, until it follows.
    lowered_from: LoadAmps | None = None
    raised_from: LoadAmps | None = None
    changed_at: AwareDatetime | None = None
    #: Phase-switching memory (see ``LoadMemory``).
    phase_count: Literal[1, 3] | None = None
    phase_wish_since: AwareDatetime | None = None
    phase_switches: list[AwareDatetime] = Field(default_factory=list, max_length=60)


class SiteDecision(Message):
    """Retained on ``<site>/decision``: the pools and headroom the last decision used, and its memory."""

    site: TopicId
    #: Pool name (physical, surplus, excess) -> per-phase amps.
    pools: dict[str, dict[Phase, Amps]] = Field(default_factory=dict)
    headroom: dict[Phase, Amps] = Field(default_factory=dict)
    #: Load id -> reason, for loads that got less than they asked for.
    limited: dict[str, str] = Field(default_factory=dict)
    stale: bool = False
    message: Text = ""
    #: Battery "full" latch of the excess hysteresis.
    battery_full_latched: bool = False
    #: Battery latch of the target band (see :class:`~shared.models.allocation.SiteMemory`).
    battery_above_target: bool = False
    #: What the battery charged (W) when last seen saturated above target; None: not saturated.
    battery_saturated_charge: PositiveWatts | None = None
    #: Smoothed solar surplus (A per phase) carried between decisions.
    surplus_ema: dict[Phase, Amps] = Field(default_factory=dict)

