"""Settings owned by the allocator: site-wide and per load. Retained state plus ``/set`` commands."""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated

from pydantic import Field, Strict, field_validator, model_validator

from .base import (
    Command,
    Contract,
    LoadAmps,
    Message,
    Percent,
    Phase,
    PositiveWatts,
    Priority,
    Seconds,
    Text,
    TopicId,
    Volts,
)


class Mode(StrEnum):
    """How a load may use power, most urgent first."""

    STANDARD = "standard"  # all the physical power the connection allows
    SOLAR_PRIORITY = "solar_priority"  # the minimum from anywhere, more from surplus
    SOLAR_ONLY = "solar_only"  # surplus only
    EXCESS = "excess"  # only truly excess power (export nobody can use or store)
    OFF = "off"
    CONTINUOUS = "continuous"  # on/off loads: always on (within the fuse)


class Strategy(StrEnum):
    """How the budget is shared among loads of one urgency class."""

    PRIORITY = "priority"
    SHARED = "shared"
    SEQUENTIAL_STRICT = "sequential_strict"
    SEQUENTIAL_OPTIMIZED = "sequential_optimized"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class Schedule(Contract):
    """A weekly time window that switches the site or one load to a mode."""

    days: list[Weekday] = Field(default_factory=lambda: list(Weekday), min_length=1)
    start: time
    end: time  # may be before start: the window runs past midnight
    tz: Annotated[str, Strict(), Field(max_length=64)] = "UTC"
    mode: Mode
    load: TopicId | None = None  # None: the site's default mode


class Circuit(Contract):
    """A named sub-limit per phase (a 20 A garage feed behind the 25 A main); may sit in another."""

    id: TopicId
    limit: LoadAmps
    parent: TopicId | None = None


class BatterySettings(Contract):
    """How the allocator counts on a home battery (see docs/allocator.md, "Battery and surplus")."""

    #: The inverter's reserve: the target band is never released below it, nor reached below it + hysteresis.
    min_soc: Percent = 10.0
    #: Below it the battery charges first (Solar Only waits, Solar Priority gets its minimum); loads start on
    #: solar once it is reached and stop only below ``target_soc - hysteresis``.
    target_soc: Percent = 80.0
    #: From this SOC (or the target, if higher) the battery counts as full: its export and what it still
    #: absorbs are excess, until it falls below ``full_soc - hysteresis``. Many batteries stop charging before
    #: 100 % (a BMS ceiling, a constant-voltage taper).
    full_soc: Percent = 97.0
    max_charge_power: PositiveWatts | None = None
    max_discharge_power: PositiveWatts | None = None
    hysteresis: Percent = 3.0


class InverterLimits(Contract):
    """What a hybrid inverter can deliver on top of the grid (battery/solar to the house).

    They cap how much more the battery can give the loads: ``max_power`` in total, ``max_power_per_phase`` on
    each phase. A ``symmetric`` inverter puts the same power on every phase, so its total is at most the
    per-phase limit times the phases; an asymmetric one may put all of ``max_power`` on one phase (which only
    matters with ``surplus_per_phase``)."""

    max_power: PositiveWatts
    max_power_per_phase: PositiveWatts | None = None
    symmetric: bool = True


class PhaseChoice(StrEnum):
    """How many phases a load that can switch (``LoadState.phase_switching``) charges on."""

    AUTO = "auto"  # the allocator picks 1 or 3 from the solar pools (docs/allocator.md, "Phase switching")
    ONE = "1"
    THREE = "3"


class Timers(Contract):
    """Anti-flicker and cadence settings (seconds)."""

    min_run: Seconds = 60.0
    min_pause: Seconds = 120.0
    grace: Seconds = 300.0
    min_interval: Seconds = 1.0
    refresh: Seconds = 10.0
    stale_after: Seconds = 10.0
    setpoint_lifetime: Seconds = 60.0
    #: Largest increase per decision (A per phase); cuts are never ramped.
    ramp_step: LoadAmps = 4.0
    #: Exponential smoothing factor for solar-derived budgets (1 = no smoothing).
    surplus_smoothing: Annotated[float, Strict(), Field(gt=0.0, le=1.0)] = 0.5
    #: Changes of a surplus budget smaller than this (A) are ignored.
    surplus_dead_band: LoadAmps = 0.5
    #: Break before make: how long a lowered load may take to follow its lower setpoint (EVs take 2-30 s).
    #: Until its measured draw shows it followed, or this time has passed, it is budgeted at the current it
    #: was lowered from, so no other load's increase counts on the current it has not yet given up.
    follow_time: Seconds = 30.0
    #: A load state older than this (by its ``ts``) claims no draw: its real current stays in the house load.
    #: Adapters republish their state every 10 s (``state_interval``): three missed states.
    load_stale_after: Seconds = 30.0
    #: A load is believed to draw at most its allocation (or the one it was lowered from, until it follows)
    #: plus this much per leg (A); a claim above it stays in the house load.
    draw_tolerance: LoadAmps = 1.0
    #: A reading or load state stamped more than this ahead of the decision's clock is from the future:
    #: not fresh.
    future_tolerance: Seconds = 5.0
    #: Phase switching (``LoadSettings.phases``): how long the pool must carry the 3-phase minimum before a
    #: 1-phase load goes to 3 phases (evcc's enable delay, 1 min), and how long it must stay short of it before
    #: a 3-phase load goes to 1 phase (evcc's disable delay, 3 min).
    phase_switch_delay_up: Seconds = 60.0
    phase_switch_delay_down: Seconds = 180.0
    #: A switching load is paused (setpoint 0) this long from the switch: the car stops, the charger changes
    #: its phases, the car resumes on the new count.
    phase_switch_pause: Seconds = 30.0
    #: At most this many switches per load in any hour (contactor wear, cars that dislike it).
    max_phase_switches_per_hour: Annotated[int, Strict(), Field(ge=0, le=60)] = 6


class SiteSettings(Message):
    """The site's configuration as the allocator applies it; retained on ``<site>/settings``."""

    site: TopicId
    phases: list[Phase] = Field(default_factory=lambda: [Phase.A, Phase.B, Phase.C], min_length=1, max_length=3)
    fuse_limit: LoadAmps = 25.0
    #: Kept free below the fuse limit on every phase.
    margin: LoadAmps = 1.0
    voltage: Volts = 230.0
    max_import_power: PositiveWatts | None = None
    power_buffer: PositiveWatts = 0.0
    inverter: InverterLimits | None = None
    excess_export_threshold: PositiveWatts = 0.0
    #: The solar surplus counts per phase, not netted over the phases (meters or tariffs that bill each phase
    #: on its own): the loads get what every phase exports, see docs/allocator.md. Off: netted.
    surplus_per_phase: bool = False
    allow_grid_charging: bool = True
    strategy: Strategy = Strategy.PRIORITY
    mode: Mode = Mode.STANDARD
    battery: BatterySettings | None = None
    circuits: list[Circuit] = Field(default_factory=list, max_length=64)
    imbalance_limit: LoadAmps | None = None
    timers: Timers = Field(default_factory=Timers)
    schedules: list[Schedule] = Field(default_factory=list, max_length=64)
    #: The ``transaction`` id of the ``/set`` these settings answer (zigbee2mqtt style), if any.
    transaction: Annotated[str, Strict(), Field(max_length=64)] | None = None

    @field_validator("phases")
    @classmethod
    def _unique(cls, value: list[Phase]) -> list[Phase]:
        if len(set(value)) != len(value):
            raise ValueError("phases repeats a phase")
        return value

    @model_validator(mode="after")
    def _circuits_known(self) -> SiteSettings:
        ids = {c.id for c in self.circuits}
        for c in self.circuits:
            if c.parent is not None and c.parent not in ids:
                raise ValueError(f"circuit {c.id!r} names unknown parent {c.parent!r}")
        if self.battery and self.battery.target_soc < self.battery.min_soc:
            raise ValueError("battery target_soc is below min_soc")
        return self


class SiteSettingsSet(Command):
    """A change to the site settings: only the fields given are changed."""

    phases: list[Phase] | None = None
    fuse_limit: LoadAmps | None = None
    margin: LoadAmps | None = None
    voltage: Volts | None = None
    max_import_power: PositiveWatts | None = None
    power_buffer: PositiveWatts | None = None
    inverter: InverterLimits | None = None
    excess_export_threshold: PositiveWatts | None = None
    surplus_per_phase: bool | None = None
    allow_grid_charging: bool | None = None
    strategy: Strategy | None = None
    mode: Mode | None = None
    battery: BatterySettings | None = None
    circuits: list[Circuit] | None = None
    imbalance_limit: LoadAmps | None = None
    timers: Timers | None = None
    schedules: list[Schedule] | None = None


class LoadSettings(Message):
    """A load's user settings; retained on ``<site>/load/<load>/settings``."""

    site: TopicId
    load: TopicId
    #: None: follow the site's mode.
    mode: Mode | None = None
    priority: Priority = 5
    #: Overrides of the device's own range (only ever narrower).
    min_current: LoadAmps | None = None
    max_current: LoadAmps | None = None
    enabled: bool = True
    name: Text = ""
    #: Use the phase mapping the allocator detected (``<site>/calibration``) instead of the adapter's ``legs``.
    auto_phase_map: bool = False
    #: Phases of a load that can switch (``LoadState.phase_switching``): auto, 1 or 3. None: its wiring, no
    #: switching.
    phases: PhaseChoice | None = None
    #: The ``transaction`` id of the ``/set`` these settings answer (zigbee2mqtt style), if any.
    transaction: Annotated[str, Strict(), Field(max_length=64)] | None = None

    @field_validator("phases", mode="before")
    @classmethod
    def _phase_number(cls, value: object) -> object:
        """``phases: 1`` in YAML is the number 1: read it as "1"."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class LoadSettingsSet(Command):
    """A change to one load's settings: only the fields given are changed."""

    mode: Mode | None = None
    priority: Priority | None = None
    min_current: LoadAmps | None = None
    max_current: LoadAmps | None = None
    enabled: bool | None = None
    name: Text | None = None
    auto_phase_map: bool | None = None
    phases: PhaseChoice | None = None
