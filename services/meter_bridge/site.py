"""One site's current picture: the latest accepted value of every field, each with its time and source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.models.base import Phase
from shared.models.measurement import (
    CurrentReading,
    EnergyReading,
    PercentReading,
    PowerReading,
    SiteMeasurement,
    VoltageReading,
)

from .config import ENERGY_FIELDS, SiteConfig
from .normalizer import NO_GENERATION, FieldKey, Generation, Normalized
from .sample import Sample


@dataclass(frozen=True, slots=True)
class Entry:
    value: float
    ts: datetime
    arrived: float  # clock.monotonic() when it arrived
    source: str
    derived: bool


@dataclass(slots=True)
class SiteState:
    site: str
    config: SiteConfig
    entries: dict[FieldKey, Entry] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def generation(self, sample: Sample) -> Generation:
        """What is known now about generation behind the grid meter, for splitting a grid total: present when
        the site has solar or battery sources, a configured ``generation_power`` or a sample that reports
        either; its size is the configured capacity, else the fresh measured solar (not derived from export)
        plus battery discharge, else unknown."""
        config = self.config
        solar_source, battery_source = config.has_solar_source(), config.has_battery_source()
        in_sample = sample.solar_power is not None or sample.battery_power is not None
        if config.generation_power is None and not (solar_source or battery_source or in_sample):
            return NO_GENERATION
        if config.generation_power is not None:
            return Generation(present=True, watts=config.generation_power)
        solar = self.entries.get(FieldKey("solar_power"))
        solar_w = sample.solar_power if sample.solar_power is not None else (
            solar.value if solar is not None and not solar.derived else None)
        battery = self.entries.get(FieldKey("battery_power"))
        if (solar_source or sample.solar_power is not None) and solar_w is None:
            return Generation(present=True)
        if (battery_source or sample.battery_power is not None) and battery is None:
            return Generation(present=True)
        watts = max(0.0, solar_w or 0.0) + max(0.0, battery.value if battery is not None else 0.0)
        return Generation(present=True, watts=watts)

    def apply(self, source: str, normalized: Normalized, ts: datetime, now: float) -> None:
        if normalized.unsplit is not None:
            # this source's total says nothing safe per phase now: what it said before goes too
            for key in [k for k, e in self.entries.items() if k.field == "grid_current" and e.source == source]:
                del self.entries[key]
        for update in normalized.updates:
            current = self.entries.get(update.key)
            if (
                update.derived
                and current is not None
                and not current.derived
                and current.source == source
                and now - current.arrived <= self.config.stale_after
            ):
                continue  # a fresh measured value of this source beats one derived from its other values
            self.entries[update.key] = Entry(update.value, ts, now, source, update.derived)
        # A source's notes say how its latest currents were made: a reading with currents replaces them.
        if normalized.notes:
            self.notes[source] = list(normalized.notes)
        elif any(u.key.field == "grid_current" for u in normalized.updates):
            self.notes.pop(source, None)

    def expire(self, now: float) -> list[FieldKey]:
        """Drop every field older than ``stale_after`` (an energy register: ``energy_stale_after``); return
        what was dropped."""
        config = self.config
        dropped = [k for k, e in self.entries.items()
                   if now - e.arrived > (config.energy_stale_after if k.field in ENERGY_FIELDS else config.stale_after)]
        for key in dropped:
            del self.entries[key]
        live_sources = {e.source for e in self.entries.values()}
        for source in list(self.notes):
            if source not in live_sources:
                del self.notes[source]
        return dropped

    def measurement(self, ts: datetime) -> SiteMeasurement:
        def reading(key: FieldKey) -> Entry | None:
            return self.entries.get(key)

        currents: dict[Phase, CurrentReading] = {}
        voltages: dict[Phase, VoltageReading] = {}
        for phase in Phase:
            if (e := reading(FieldKey("grid_current", phase))) is not None:
                currents[phase] = CurrentReading(value=e.value, ts=e.ts, source=e.source, derived=e.derived)
            if (e := reading(FieldKey("voltage", phase))) is not None:
                voltages[phase] = VoltageReading(value=e.value, ts=e.ts, source=e.source, derived=e.derived)

        def power(name: str) -> PowerReading | None:
            e = reading(FieldKey(name))  # type: ignore[arg-type]
            return None if e is None else PowerReading(value=e.value, ts=e.ts, source=e.source, derived=e.derived)

        def energy(name: str) -> EnergyReading | None:
            e = reading(FieldKey(name))  # type: ignore[arg-type]
            return None if e is None else EnergyReading(value=e.value, ts=e.ts, source=e.source, derived=e.derived)

        notes = [note for source in sorted(self.notes) for note in self.notes[source]]
        grid_power = power("grid_power")
        solar_power = power("solar_power")
        if solar_power is None and grid_power is not None and not self.config.has_solar_source():
            solar_power = PowerReading(
                value=max(0.0, -grid_power.value), ts=grid_power.ts, source=grid_power.source, derived=True
            )
            notes.append("solar_power derived from grid export (a lower bound: no solar source configured)")
        soc = reading(FieldKey("battery_soc"))
        return SiteMeasurement(
            site=self.site,
            ts=ts,
            grid_current=currents,
            voltage=voltages,
            grid_power=grid_power,
            solar_power=solar_power,
            battery_soc=None if soc is None else PercentReading(
                value=soc.value, ts=soc.ts, source=soc.source, derived=soc.derived
            ),
            battery_power=power("battery_power"),
            grid_import_energy=energy("grid_import_energy"),
            grid_export_energy=energy("grid_export_energy"),
            solar_energy=energy("solar_energy"),
            notes=notes,
        )
