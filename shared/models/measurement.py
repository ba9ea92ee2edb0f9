"""The normalized site measurement published by the meter bridge."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, Strict

from .base import Amps, Contract, Message, Percent, Phase, TopicId, Volts, WattHours, Watts


class Reading(Contract):
    """One measured value with its own timestamp and origin."""

    ts: AwareDatetime
    #: The meter source id (from the meter bridge config) the value came from.
    source: Annotated[str, Strict(), Field(max_length=64)] | None = None
    #: True when computed rather than measured (solar from export, current from power).
    derived: bool = False


class CurrentReading(Reading):
    value: Amps


class VoltageReading(Reading):
    value: Volts


class PowerReading(Reading):
    value: Watts


class PercentReading(Reading):
    value: Percent


class EnergyReading(Reading):
    """A meter's own lifetime energy register (Wh): it only grows, except when the device resets it."""

    value: WattHours


class SiteMeasurement(Message):
    """What the grid connection, solar and battery do now. Currents per phase, import positive."""

    site: TopicId
    grid_current: dict[Phase, CurrentReading] = Field(default_factory=dict)
    voltage: dict[Phase, VoltageReading] = Field(default_factory=dict)
    #: Grid power, import positive.
    grid_power: PowerReading | None = None
    #: Solar production (positive).
    solar_power: PowerReading | None = None
    battery_soc: PercentReading | None = None
    #: Battery power, discharge positive.
    battery_power: PowerReading | None = None
    #: Energy imported from the grid, the grid meter's own register (Wh; never an integral of power).
    grid_import_energy: EnergyReading | None = None
    #: Energy exported to the grid, the grid meter's own register (Wh).
    grid_export_energy: EnergyReading | None = None
    #: Energy produced by the solar inverter(s), the inverter's or solar meter's own register (Wh).
    solar_energy: EnergyReading | None = None
    #: How the bridge filled gaps ("grid power split evenly over 3 phases", ...).
    notes: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list)
