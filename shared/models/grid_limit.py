"""Grid-operator limits: a site import limit and caps on the controllable loads, set from outside.

A grid operator may dim controllable loads (Germany's §14a EnWG: each to no less than 4.2 kW) by a control
box or a relay contact. The signal reaches the allocator as a ``<site>/grid-limit/set`` command (or a relay
contact mapped to a preset in the allocator's config); the allocator applies the limit above every mode and
priority and publishes what is in force, and why, retained on ``<site>/grid-limit``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, Strict, model_validator

from .base import Command, Contract, Message, PositiveWatts, Seconds, Text, TopicId


class GridLimitValues(Contract):
    """What a grid-operator limit allows: the site's import and each controllable load's power (W).

    None: that part is not limited. ``controllable_cap_w`` caps every load the allocator steers;
    ``load_cap_w`` caps the loads it names (a load under both gets the lower)."""

    #: The most the site may import (W, summed over the phases), on top of ``max_import_power``.
    import_limit_w: PositiveWatts | None = None
    #: Each controllable load at most this (W); §14a: 4 200.
    controllable_cap_w: PositiveWatts | None = None
    #: Load id -> its cap (W).
    load_cap_w: dict[TopicId, PositiveWatts] = Field(default_factory=dict, max_length=1000)

    @property
    def limits(self) -> bool:
        """Whether anything is limited at all."""
        return self.import_limit_w is not None or self.controllable_cap_w is not None or bool(self.load_cap_w)


class GridLimitSet(Command):
    """The operator's signal on ``<site>/grid-limit/set``: the whole limit in force now (it replaces the last).

    A signal without limits ends any limit and still counts as a heartbeat of the source."""

    import_limit_w: PositiveWatts | None = None
    controllable_cap_w: PositiveWatts | None = None
    load_cap_w: dict[TopicId, PositiveWatts] = Field(default_factory=dict, max_length=1000)
    #: The limit ends on its own at this time (None: until the next signal).
    valid_until: AwareDatetime | None = None
    #: Who sent it (a control box, an EMS, a person): shown in the state.
    source: Annotated[str, Strict(), Field(max_length=64)] = "mqtt"
    #: When the source sent it (informational: silence and expiry are judged on the allocator's clock).
    ts: AwareDatetime | None = None

    @property
    def values(self) -> GridLimitValues:
        return GridLimitValues(import_limit_w=self.import_limit_w, controllable_cap_w=self.controllable_cap_w,
                               load_cap_w=self.load_cap_w)


class GridLimitSignal(Contract):
    """The last signal the allocator heard from the grid operator's source, for the decision."""

    values: GridLimitValues = Field(default_factory=GridLimitValues)
    valid_until: AwareDatetime | None = None
    source: Annotated[str, Strict(), Field(max_length=64)] = "mqtt"
    #: When it arrived, on the allocator's clock.
    heard: AwareDatetime


class GridLimitInput(Contract):
    """The decision's grid-operator input: the last signal and what to do when the source goes silent."""

    signal: GridLimitSignal | None = None
    #: The source must be heard at least every ``signal_timeout``; if it is not, ``fallback`` applies.
    required: bool = False
    signal_timeout: Seconds = 900.0
    #: The safe limit while a required source is silent (§14a: controllable loads at 4 200 W each).
    fallback: GridLimitValues | None = None

    @model_validator(mode="after")
    def _fallback_when_required(self) -> GridLimitInput:
        if self.required and self.fallback is None:
            raise ValueError("a required grid-limit source needs a fallback")
        return self


class GridLimitOrigin(StrEnum):
    """Where the limit in force comes from."""

    NONE = "none"  # no limit
    SIGNAL = "signal"  # the source's last signal
    FALLBACK = "fallback"  # the source is silent: the configured safe value


class GridLimitState(Message):
    """Retained on ``<site>/grid-limit``: the grid-operator limit the allocator applies, and why."""

    site: TopicId
    in_force: bool = False
    origin: GridLimitOrigin = GridLimitOrigin.NONE
    #: The source named by the signal (or the relay input) it came from.
    source: Annotated[str, Strict(), Field(max_length=64)] = ""
    import_limit_w: PositiveWatts | None = None
    controllable_cap_w: PositiveWatts | None = None
    load_cap_w: dict[TopicId, PositiveWatts] = Field(default_factory=dict)
    #: When the limit ends on its own (expiry of the signal); None: until the next signal.
    valid_until: AwareDatetime | None = None
    #: When the source was last heard (allocator's clock).
    heard: AwareDatetime | None = None
    #: Loads the limit holds back in this decision.
    binding: list[TopicId] = Field(default_factory=list)
    why: Text = ""
