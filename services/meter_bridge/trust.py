"""Trust: what is not plausible is rejected, what is old is dropped.

* **Plausibility** (:class:`PlausibilityGate`): a reading with a non-finite value, a value beyond the
  site's physical range, values that contradict each other (a phase power its current cannot carry, a total
  far from the sum of its phases), or a jump larger than the configured step from the same source's last accepted
  value is rejected whole: nothing of it is applied, and the bridge reports it on the site's errors topic.
  A jump is a glitch only if it does not persist: a second reading that confirms the new level (within
  one step of the rejected value) is accepted, so a real load change is never locked out.
* **Energy registers** (:meth:`PlausibilityGate.screen_energy`): a device's lifetime register only grows. A
  value below the last accepted one is dropped (the rest of the reading still applies) and reported,
  unless it is near zero (≤ ``RESET_NEAR_ZERO_WH``): the device reset its counter, which is accepted and
  reported. A lower level that the next reading confirms (it counts on from there) is accepted as a reset
  too (a replaced meter), so a register is never locked out for good.
* **Staleness** (:class:`Freshness`): every field remembers when it arrived; once older than
  ``stale_after`` it is dropped from the measurement (never frozen), and the measurement is republished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import ENERGY_FIELDS, Plausibility
from .normalizer import FieldKey, Update
from .sample import Sample


class Implausible(ValueError):
    """A reading that must not be applied; the message says which value and why."""


_POWER_FIELDS = ("grid_power", "solar_power", "battery_power")
#: A reading's values may disagree by this factor (a phase power against what its current carries; a total
#: against the sum of its phases, by 1/factor of the larger) plus this slack (W) before the reading counts as
#: contradicting itself: samples taken a moment apart, rounding and power factors stay well inside it.
CONSISTENCY_FACTOR = 2.0
CONSISTENCY_SLACK_W = 500.0


#: A register that falls to this or less (Wh) was reset by its device, not misread.
RESET_NEAR_ZERO_WH = 100.0
#: The largest register value a measurement holds (Wh): the contract's bound.
MAX_ENERGY_WH = 1e12


@dataclass(frozen=True, slots=True)
class EnergyNotice:
    """What :meth:`PlausibilityGate.screen_energy` has to report: ``energy_backwards`` (the value was dropped)
    or ``energy_reset`` (the value was accepted as the device's counter starting again)."""

    code: str
    message: str


@dataclass(slots=True)
class PlausibilityGate:
    """Checks one source's readings against the site's rules; remembers its last accepted values."""

    rules: Plausibility
    _last: dict[FieldKey, float] = field(default_factory=dict)
    _pending_jump: dict[FieldKey, float] = field(default_factory=dict)
    _energy: dict[FieldKey, float] = field(default_factory=dict)
    _pending_energy: dict[FieldKey, float] = field(default_factory=dict)

    def check_sample(self, sample: Sample) -> None:
        bad = sample.non_finite()
        if bad:
            raise Implausible(f"non-finite value in {', '.join(bad)}")
        if sample.is_empty():
            raise Implausible("the reading holds no value this source can use")
        self._check_consistency(sample)

    def _check_consistency(self, sample: Sample) -> None:
        """A reading must agree with itself: every power within range, a phase's power no larger than its
        current can carry (|P| ≤ |I|·V, with room for timing and rounding), and the total not far from the
        sum of the phases. A value that contradicts the others by this much is a broken reading; applied,
        it would flip a phase's sign or hide an import."""
        rules = self.rules
        for phase, watts in sorted(sample.power.items()):
            if abs(watts) > rules.max_power:
                raise Implausible(f"power[L{phase}]: {watts:.0f} W is beyond the plausible ±{rules.max_power:g} W")
            amps = sample.current.get(phase)
            if amps is None:
                continue
            volts = sample.voltage.get(phase) or rules.max_voltage
            carried = abs(amps) * max(volts, rules.max_voltage)
            if abs(watts) > CONSISTENCY_FACTOR * carried + CONSISTENCY_SLACK_W:
                raise Implausible(f"power[L{phase}]: {watts:.0f} W contradicts current[L{phase}] {amps:g} A "
                                  f"(at most {carried:.0f} W at {max(volts, rules.max_voltage):g} V)")
        total = sample.total_power
        if total is not None and sample.power and not sample.partial:
            summed = sum(sample.power.values())
            allowed = max(abs(total), abs(summed)) / CONSISTENCY_FACTOR + CONSISTENCY_SLACK_W
            if abs(total - summed) > allowed:
                raise Implausible(f"total_power {total:.0f} W contradicts the phases' sum {summed:.0f} W")

    def check_updates(self, updates: list[Update]) -> None:
        """Raise :class:`Implausible` for the first value out of range or jumping; else remember them."""
        rules = self.rules
        confirmed: list[FieldKey] = []
        for update in updates:
            value, key = update.value, update.key
            if not math.isfinite(value):
                raise Implausible(f"{key}: non-finite value {value}")
            if key.field == "grid_current" and abs(value) > rules.max_current:
                raise Implausible(f"{key}: {value:.1f} A is beyond the plausible ±{rules.max_current:g} A")
            if key.field == "voltage" and not rules.min_voltage <= value <= rules.max_voltage:
                raise Implausible(
                    f"{key}: {value:.1f} V is outside the plausible {rules.min_voltage:g}-{rules.max_voltage:g} V"
                )
            if key.field in _POWER_FIELDS and abs(value) > rules.max_power:
                raise Implausible(f"{key}: {value:.0f} W is beyond the plausible ±{rules.max_power:g} W")
            if key.field == "battery_soc" and not 0.0 <= value <= 100.0:
                raise Implausible(f"{key}: {value:g} % is not a state of charge")
            step = self._step_for(key)
            last = self._last.get(key)
            if step is not None and last is not None and abs(value - last) > step:
                pending = self._pending_jump.get(key)
                if pending is not None and abs(value - pending) <= step:
                    confirmed.append(key)  # the new level held: a real change, not a glitch
                    continue
                self._pending_jump[key] = value
                raise Implausible(f"{key}: jump from {last:.1f} to {value:.1f} exceeds the allowed step {step:g}")
        for update in updates:
            self._last[update.key] = update.value
        for key in confirmed:
            self._pending_jump.pop(key, None)
        for update in updates:
            self._pending_jump.pop(update.key, None)

    def screen_energy(self, updates: list[Update]) -> tuple[list[Update], list[EnergyNotice]]:
        """``updates`` without the energy register values that went backwards or out of range, and what to
        report about them (see the module docstring); remembers the accepted values."""
        kept: list[Update] = []
        notices: list[EnergyNotice] = []
        for update in updates:
            key, value = update.key, update.value
            if key.field not in ENERGY_FIELDS:
                kept.append(update)
                continue
            if not 0.0 <= value <= MAX_ENERGY_WH:
                notices.append(EnergyNotice("implausible", f"{key}: {value:g} Wh is not an energy register value"))
                continue
            last = self._energy.get(key)
            if last is not None and value < last:
                pending = self._pending_energy.get(key)
                fell = f"{key}: register went from {last:.0f} to {value:.0f} Wh"
                if value <= RESET_NEAR_ZERO_WH:
                    notices.append(EnergyNotice("energy_reset", f"{fell}: reset by the device, counting on from there"))
                elif pending is not None and pending <= value:
                    notices.append(EnergyNotice("energy_reset", f"{fell}, counting on from {pending:.0f} Wh: "
                                                                "taken as a new register"))
                else:
                    self._pending_energy[key] = value
                    notices.append(EnergyNotice("energy_backwards", f"{fell}: backwards, value dropped"))
                    continue
            self._pending_energy.pop(key, None)
            self._energy[key] = value
            kept.append(update)
        return kept, notices

    def _step_for(self, key: FieldKey) -> float | None:
        if key.field == "grid_current":
            return self.rules.max_current_step
        if key.field in _POWER_FIELDS:
            return self.rules.max_power_step
        return None


@dataclass(slots=True)
class Freshness:
    """When each source last delivered, and whether it counts as alive."""

    stale_after: float
    _last_seen: dict[str, float] = field(default_factory=dict)

    def seen(self, source: str, now: float) -> None:
        self._last_seen[source] = now

    def is_stale(self, arrived: float, now: float) -> bool:
        return now - arrived > self.stale_after

    def gone_silent(self, now: float) -> list[str]:
        """Sources whose last delivery is older than ``stale_after`` (each reported once, then forgotten)."""
        silent = [s for s, t in self._last_seen.items() if self.is_stale(t, now)]
        for source in silent:
            del self._last_seen[source]
        return silent
