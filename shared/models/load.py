"""The generic load contract: what a controllable load is and does, as its adapter reports it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from .base import Leg, LoadAmps, Message, Percent, Phase, PositiveWatts, Text, TopicId, WattHours


class LoadKind(StrEnum):
    EVSE = "evse"  # a charger connector: continuous current between min and max
    ONOFF = "onoff"  # a relay: all (rated power) or nothing
    STEPPED = "stepped"  # a few fixed current steps (multi-stage boiler)
    CONTINUOUS = "continuous"  # any current between min and max (boiler with % power control)


class LoadStatus(StrEnum):
    ACTIVE = "active"  # drawing, or ready to draw as soon as allowed
    IDLE = "idle"  # nothing to draw (no car, tank hot): gets an "available" figure only
    FINISHING = "finishing"  # session ending
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"  # device silent or offline: not counted on


DEFAULT_LEGS: dict[Leg, Phase] = {Leg.L1: Phase.A, Leg.L2: Phase.B, Leg.L3: Phase.C}


class LoadState(Message):
    """Published retained by a load adapter on ``<site>/load/<load>/state``."""

    site: TopicId
    load: TopicId
    kind: LoadKind
    name: Text = ""
    #: How the load's legs are wired to the site's phases (L1/L2/L3 -> A/B/C).
    legs: dict[Leg, Phase] = Field(default_factory=lambda: dict(DEFAULT_LEGS))
    #: The legs the load uses now (a 1-phase car on a 3-phase charger uses L1 only).
    phases_in_use: list[Leg] = Field(default_factory=lambda: [Leg.L1, Leg.L2, Leg.L3], min_length=1, max_length=3)
    #: The load can switch between one phase and all its wired legs while paused (a 1p/3p charger); the
    #: allocator then decides its phases (``LoadSettings.phases``) and the setpoint's ``phases`` say which.
    phase_switching: bool = False
    #: The leg a switching load uses on one phase.
    one_phase_leg: Leg = Leg.L1
    #: Per-leg current range (continuous and EVSE loads). 0 for on/off loads.
    min_current: LoadAmps = 0.0
    max_current: LoadAmps = 0.0
    #: Rated power of an on/off load (W, over all legs in use).
    rated_power: PositiveWatts | None = None
    #: Allowed per-leg current steps of a stepped load, ascending.
    steps: list[LoadAmps] = Field(default_factory=list, max_length=16)
    #: What the load draws now, per site phase (a phase missing: not measured there).
    draw: dict[Phase, LoadAmps] = Field(default_factory=dict)
    #: Per leg, what the load may draw on its own when nobody controls it (an OCPP charger's baseline
    #: profile current); the allocator reserves it for a faulted or unavailable load. None: nothing known.
    fallback_current: LoadAmps | None = None
    power: PositiveWatts | None = None
    energy: WattHours | None = None
    status: LoadStatus = LoadStatus.ACTIVE
    #: Must run whatever the mode (a boiler below its minimum temperature).
    must_run: bool = False
    #: The circuit (sub-feed) the load sits behind, if any.
    circuit: TopicId | None = None
    #: Vehicle or tank state of charge, when known.
    soc: Percent | None = None
    #: Free-form device facts for people (OCPP status, temperature, ...).
    details: dict[Annotated[str, Field(max_length=64)], str | float | int | bool | None] = Field(
        default_factory=dict, max_length=32
    )

    @model_validator(mode="after")
    def _consistent(self) -> LoadState:
        if self.max_current < self.min_current:
            raise ValueError(f"max_current {self.max_current} A is below min_current {self.min_current} A")
        missing = [leg for leg in self.phases_in_use if leg not in self.legs]
        if missing:
            raise ValueError(f"phases_in_use {missing} are not wired in legs")
        if len(set(self.phases_in_use)) != len(self.phases_in_use):
            raise ValueError("phases_in_use repeats a leg")
        if self.kind is LoadKind.ONOFF and self.rated_power is None and self.max_current <= 0:
            raise ValueError("an on/off load needs rated_power or max_current")
        if self.kind is LoadKind.STEPPED and not self.steps:
            raise ValueError("a stepped load needs steps")
        return self

    def site_phases(self) -> list[Phase]:
        """The site phases the load draws on now."""
        return [self.legs[leg] for leg in self.phases_in_use]


__all__ = ["DEFAULT_LEGS", "LoadKind", "LoadState", "LoadStatus"]
