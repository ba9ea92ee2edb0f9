"""What the allocator learned about a site's wiring from load steps: each load's L1/L2/L3 -> A/B/C mapping
and each grid phase's current polarity, with the votes behind them and the detector's memory."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from .base import Amps, Contract, Leg, LoadAmps, Message, Phase, TopicId

#: The most recent votes kept per leg and per phase (older ones fall out, so a fixed setting wins again).
VOTE_WINDOW = 12


class Polarity(StrEnum):
    NORMAL = "normal"  # the grid current steps the way the load steps (import positive)
    INVERTED = "inverted"  # it steps the other way: the CT or the meter's sign is reversed
    UNKNOWN = "unknown"  # not enough consistent votes yet


class PhasePolarity(Contract):
    """The polarity of one grid phase as load steps showed it."""

    polarity: Polarity = Polarity.UNKNOWN
    normal: Annotated[int, Field(ge=0)] = 0
    inverted: Annotated[int, Field(ge=0)] = 0
    #: The most recent votes, oldest first (the detector's memory).
    recent: list[Polarity] = Field(default_factory=list, max_length=VOTE_WINDOW)


class LoadCalibration(Contract):
    """One load's mapping as configured (its adapter's ``legs``) and as the grid showed it."""

    configured: dict[Leg, Phase] = Field(default_factory=dict)
    #: Leg -> the site phase the grid stepped on, only for legs with enough consistent votes.
    legs: dict[Leg, Phase] = Field(default_factory=dict)
    #: Leg -> site phase -> votes among the recent ones.
    votes: dict[Leg, dict[Phase, int]] = Field(default_factory=dict)
    #: Whether a detected leg sits on another phase than configured.
    differs: bool = False
    #: Steps on every phase at once: they confirm polarity but cannot tell legs apart.
    symmetric_steps: Annotated[int, Field(ge=0)] = 0
    #: The most recent votes per leg, oldest first (the detector's memory).
    recent: dict[Leg, list[Phase]] = Field(default_factory=dict)


class Observation(Contract):
    """One (measurement, load states) pair as the detector keeps it to compare with the next one."""

    ts: AwareDatetime
    grid: dict[Phase, Amps] = Field(default_factory=dict)
    #: Load -> what it drew per site phase.
    draws: dict[TopicId, dict[Phase, LoadAmps]] = Field(default_factory=dict)


class PendingStep(Contract):
    """A load step waiting for the grid to settle (the detector's ``lag``): judged at the first observation
    at or after ``due``."""

    load: TopicId
    #: The load's change of draw per site phase (signed).
    delta: dict[Phase, Amps] = Field(default_factory=dict)
    #: The grid per phase before the step (up to ``lag`` before the load's last report of its old draw).
    before: dict[Phase, Amps] = Field(default_factory=dict)
    due: AwareDatetime


class Calibration(Message):
    """Detected phase mapping per load and polarity per grid phase; retained on ``<site>/calibration``.

    The allocator only warns about what it finds (an error report per finding); it applies a detected
    mapping only to loads whose settings say ``auto_phase_map: true``."""

    site: TopicId
    loads: dict[TopicId, LoadCalibration] = Field(default_factory=dict)
    phases: dict[Phase, PhasePolarity] = Field(default_factory=dict)
    #: Step events seen, and how many of them the grid did not match (house noise, lag, two loads at once).
    events: Annotated[int, Field(ge=0)] = 0
    ignored: Annotated[int, Field(ge=0)] = 0
    notes: list[Annotated[str, Field(max_length=300)]] = Field(default_factory=list, max_length=32)
    #: The last observation, to compare the next one with (any allocator instance continues from here).
    last: Observation | None = None
    #: Older observations still inside the ``lag`` window, oldest first, and a step waiting for its verdict.
    history: list[Observation] = Field(default_factory=list, max_length=64)
    pending: PendingStep | None = None


__all__ = ["VOTE_WINDOW", "Calibration", "LoadCalibration", "Observation", "PendingStep", "PhasePolarity", "Polarity"]
