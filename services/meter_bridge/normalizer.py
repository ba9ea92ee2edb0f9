"""From a device's reading to measurement fields: phase mapping, polarity, units and what can be derived.

Rules (``docs/meters.md`` says the same for users):

* Grid currents are import positive. A current takes the sign of the same phase's power when the
  device gives both (meters report current unsigned and power signed); ``invert`` flips both.
* A phase with power but no current gets current = power / voltage, with the measured voltage of that
  phase if there is one (and it is above 50 V), else the site's nominal voltage; the sign is kept and
  the value is marked derived.
* A grid total without per-phase values is split by the source's ``split`` policy (noted in the
  measurement): ``worst_case`` puts the whole import on every phase and credits no export,
  ``even`` divides it over the site's phases, ``none`` leaves the currents out. Both hold only without
  generation behind the meter. With generation (a solar or battery source, ``generation_power``, or an
  export that proves it), a phase may import far more than the total: with total P and generation G on
  phases unknown, each phase's power is P minus the others', and each other phase exports at most what the
  generation on it feeds, so no phase imports more than P + G. Then every phase gets (P + G) / V, whatever
  the policy, never an even share; with G unknown (or below the export measured, so not all of it is
  known) the currents are left out (unknown) and the source's channel reports it.
* Grid power is the device's total, else the sum of the per-phase powers, else Σ current x voltage (derived).
* A solar or battery source's generic power (total, else sum of phases) feeds ``solar_power`` /
  ``battery_power``; battery power is published discharge positive (``battery_sign`` per source).
* Energy comes only from the device's own registers, never from integrating power: a grid source's
  forward register is ``grid_import_energy`` and its reverse register ``grid_export_energy`` (``invert``
  swaps them, as it flips the power); a solar source's forward register (reverse with ``invert``) is
  ``solar_energy``. A battery's registers are not published.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.models.base import Phase

from .config import FieldName, SourceBase
from .sample import Sample

MIN_USABLE_VOLTAGE = 50.0


@dataclass(frozen=True, slots=True)
class FieldKey:
    """One slot of the measurement: a field, and for per-phase fields its phase."""

    field: FieldName
    phase: Phase | None = None

    def __str__(self) -> str:
        return f"{self.field}.{self.phase.value}" if self.phase else self.field


@dataclass(frozen=True, slots=True)
class Update:
    key: FieldKey
    value: float
    derived: bool = False


@dataclass(frozen=True, slots=True)
class Generation:
    """What the site knows about generation behind the grid meter, for bounding a grid total per phase."""

    #: The site has generation behind the meter (solar or battery sources, or a configured capacity).
    present: bool = False
    #: The most it feeds now (W): the configured capacity, else what is measured; None when unknown.
    watts: float | None = None


NO_GENERATION = Generation()


@dataclass(slots=True)
class Normalized:
    updates: list[Update] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Why this reading's total gave no per-phase currents although its policy would split it (None: it did).
    unsplit: str | None = None

    def get(self, key: FieldKey) -> Update | None:
        return next((u for u in self.updates if u.key == key), None)


def _sign_like(magnitude: float, reference: float) -> float:
    if reference < 0:
        return -abs(magnitude)
    if reference > 0:
        return abs(magnitude)
    return magnitude


def normalize(
    source: SourceBase, sample: Sample, *, nominal_voltage: float, site_phases: list[Phase],
    generation: Generation = NO_GENERATION,
) -> Normalized:
    """Turn ``sample`` of ``source`` into measurement updates (not yet checked for plausibility); a grid
    total alone is split over ``site_phases`` knowing the site's ``generation``."""
    out = Normalized()
    # ``invert`` is about clamps and meters (grid, solar); a battery's sign is ``battery_sign``.
    polarity = -1.0 if source.invert and source.role != "battery" else 1.0

    def add(name: FieldName, value: float, phase: Phase | None = None, derived: bool = False) -> None:
        if source.feeds_field(name):
            out.updates.append(Update(FieldKey(name, phase), value, derived))

    def site_phase(device_phase: int) -> Phase | None:
        return source.phase_map.get(device_phase)

    # Per-phase voltages (any role: a voltage is a voltage).
    voltages: dict[int, float] = dict(sample.voltage)
    for device_phase, volts in sorted(sample.voltage.items()):
        mapped = site_phase(device_phase)
        if mapped is not None and source.role == "grid":
            add("voltage", volts, mapped)

    def volts_for(device_phase: int) -> float:
        measured = voltages.get(device_phase)
        return measured if measured is not None and measured >= MIN_USABLE_VOLTAGE else nominal_voltage

    phase_powers = {p: polarity * w for p, w in sample.power.items()}
    total = polarity * sample.total_power if sample.total_power is not None else None
    role_power: float | None = total
    role_power_derived = False
    if role_power is None and phase_powers and not sample.partial:
        role_power = sum(phase_powers.values())

    if source.role == "grid":
        currents: dict[int, tuple[float, bool]] = {}
        for device_phase, amps in sample.current.items():
            power = phase_powers.get(device_phase)
            signed = _sign_like(amps, power) if power is not None else amps
            currents[device_phase] = (polarity * signed if power is None else signed, False)
        for device_phase, watts in phase_powers.items():
            if device_phase not in currents:
                currents[device_phase] = (watts / volts_for(device_phase), True)
        for device_phase, (amps, derived) in sorted(currents.items()):
            mapped = site_phase(device_phase)
            if mapped is not None:
                add("grid_current", amps, mapped, derived)
        if role_power is None and currents and not sample.partial:
            role_power = sum(a * volts_for(p) for p, (a, _) in currents.items())
            role_power_derived = True
        if not currents and total is not None and not sample.partial and source.feeds_field("grid_current"):
            _split(source, total, nominal_voltage, site_phases, out, generation)
        if role_power is not None:
            add("grid_power", role_power, derived=role_power_derived)
    elif source.role == "solar" and role_power is not None:
        add("solar_power", role_power)
    elif source.role == "battery" and role_power is not None:
        add("battery_power", _battery(source, role_power))

    forward, reverse = sample.energy_forward, sample.energy_reverse
    if source.invert:
        forward, reverse = reverse, forward
    if source.role == "grid":
        if forward is not None:
            add("grid_import_energy", forward)
        if reverse is not None:
            add("grid_export_energy", reverse)
    elif source.role == "solar" and forward is not None:
        add("solar_energy", forward)
    if sample.solar_energy is not None:
        add("solar_energy", sample.solar_energy)

    if sample.solar_power is not None:
        add("solar_power", sample.solar_power)
    if sample.battery_power is not None:
        add("battery_power", _battery(source, sample.battery_power))
    if sample.battery_soc is not None:
        add("battery_soc", sample.battery_soc)
    return out


def _battery(source: SourceBase, watts: float) -> float:
    return -watts if source.battery_sign == "charge_positive" else watts


def _split(source: SourceBase, total: float, nominal_voltage: float, phases: list[Phase], out: Normalized,
           generation: Generation) -> None:
    if source.split == "none":
        return
    names = ",".join(p.value for p in phases)
    if generation.present or total < 0:  # generation behind the meter (an export proves it)
        if generation.watts is None or total + generation.watts < 0:
            known = "unknown" if generation.watts is None else f"{generation.watts:g} W, less than the export"
            out.unsplit = (f"{source.id}: a grid total of {total:g} W with generation behind the meter "
                           f"({known}) says nothing safe about each phase: currents left out")
            out.notes.append(out.unsplit)
            return
        amps = (total + generation.watts) / nominal_voltage
        note = (f"{source.id}: grid power bounded on each of {names} by total + generation "
                f"({total:g} + {generation.watts:g} W) at {nominal_voltage:g} V")
    elif source.split == "even":
        amps = total / len(phases) / nominal_voltage
        note = f"{source.id}: grid power split evenly over {names} at {nominal_voltage:g} V"
    else:  # worst_case
        amps = max(total, 0.0) / nominal_voltage
        note = f"{source.id}: grid power taken as worst case on each of {names} at {nominal_voltage:g} V"
    for phase in phases:
        out.updates.append(Update(FieldKey("grid_current", phase), amps, derived=True))
    out.notes.append(note)
