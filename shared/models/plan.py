"""Departure plans on dynamic tariffs: the price and solar forecasts a bridge publishes, a load's plan
request, and the plan the allocator works out and publishes (see docs/plans.md)."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated

from pydantic import AwareDatetime, Field, Strict, model_validator

from .base import Command, Contract, LoadAmps, Message, Percent, PositiveWatts, Text, TopicId, WattHours

#: A price per kWh in the forecast's currency; negative prices happen (a surplus of wind on the grid).
Price = Annotated[float, Strict(), Field(ge=-1000.0, le=1000.0, allow_inf_nan=False)]
#: A currency code (``EUR``, ``SEK``, ``NOK``, ``ct``): shown, never converted.
Currency = Annotated[str, Strict(), Field(min_length=1, max_length=8)]
#: At most this many slots in a forecast: two days of 15-minute slots with room to spare.
MAX_SLOTS = 500


class _Window(Contract):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_start(self) -> _Window:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        return self


def _no_overlap(slots: list[_Window]) -> None:
    ordered = sorted(slots, key=lambda s: s.start)
    for before, after in pairwise(ordered):
        if after.start < before.end:
            raise ValueError(f"slots overlap at {after.start.isoformat()}")


class PriceSlot(_Window):
    """One tariff slot: from ``start`` (inclusive) to ``end`` (exclusive), ``price`` per kWh imported."""

    price: Price
    currency: Currency = "EUR"


class PriceForecast(Message):
    """Retained on ``<site>/prices``: the import price per slot (a Tibber, Nordpool or aWATTar list).

    Slots may come in any order and need not be contiguous; time no slot covers has no known price and is
    planned last."""

    site: TopicId
    slots: list[PriceSlot] = Field(default_factory=list, max_length=MAX_SLOTS)

    @model_validator(mode="after")
    def _disjoint(self) -> PriceForecast:
        _no_overlap(list(self.slots))
        return self


class PvSlot(_Window):
    """Expected solar production over one slot (W, mean over the slot)."""

    power: PositiveWatts


class PvForecast(Message):
    """Retained on ``<site>/pv-forecast`` (optional): the solar the site expects, per slot."""

    site: TopicId
    slots: list[PvSlot] = Field(default_factory=list, max_length=MAX_SLOTS)

    @model_validator(mode="after")
    def _disjoint(self) -> PvForecast:
        _no_overlap(list(self.slots))
        return self


class PlanSet(Command):
    """On ``<site>/load/<load>/plan/set``: reach ``target_soc`` (with the battery's ``capacity_wh``) or
    deliver ``target_energy_wh`` more by ``deadline``, as cheaply as the price forecast allows. The payload
    ``null`` clears the plan."""

    target_soc: Percent | None = None
    #: Usable battery capacity (Wh): turns the SOC the car reports into the energy still needed.
    capacity_wh: WattHours | None = None
    target_energy_wh: WattHours | None = None
    deadline: AwareDatetime

    @model_validator(mode="after")
    def _one_target(self) -> PlanSet:
        if (self.target_soc is None) == (self.target_energy_wh is None):
            raise ValueError("give exactly one of target_soc and target_energy_wh")
        if self.target_soc is not None and not self.capacity_wh:
            raise ValueError("target_soc needs capacity_wh (the battery's usable capacity in Wh)")
        return self


class PlannedSlot(_Window):
    """One slot the plan charges in."""

    #: The current per leg the plan counts on (the charge rate the fuse allows, as estimated).
    current: LoadAmps
    #: Energy the plan expects to deliver in the slot (Wh), and how much of it the sun covers.
    energy_wh: WattHours
    solar_wh: WattHours = 0.0
    #: The slot's price per kWh; None where the forecast has no price.
    price: Price | None = None


class LoadPlan(Message):
    """Retained on ``<site>/load/<load>/plan``: the allocator's plan for the load, replanned as prices, the
    car's SOC and the fuse headroom change. Also the plan's memory: the request is read back from here."""

    site: TopicId
    load: TopicId
    #: The request, as set.
    target_soc: Percent | None = None
    capacity_wh: WattHours | None = None
    target_energy_wh: WattHours | None = None
    deadline: AwareDatetime
    transaction: Annotated[str, Strict(), Field(max_length=64)] | None = None
    #: The load's energy register when the plan was set (counts ``target_energy_wh`` from there).
    energy_at_start_wh: WattHours | None = None
    #: Energy still to deliver (Wh) when this plan was made.
    energy_needed_wh: WattHours = 0.0
    #: The charge rate the plan counts on (A per leg) and the house load it was estimated from (A).
    current: LoadAmps = 0.0
    house_estimate: LoadAmps | None = None
    slots: list[PlannedSlot] = Field(default_factory=list, max_length=MAX_SLOTS)
    #: Grid energy × price over the planned slots; None when a slot has no price.
    expected_cost: float | None = None
    currency: Currency | None = None
    #: When the target is expected to be reached (None: not by the deadline).
    expected_finish: AwareDatetime | None = None
    feasible: bool = True
    #: Energy the plan falls short by (Wh) when it is not feasible.
    shortfall_wh: WattHours = 0.0
    message: Text = ""


__all__ = ["LoadPlan", "PlanSet", "PlannedSlot", "PriceForecast", "PriceSlot", "PvForecast", "PvSlot"]
