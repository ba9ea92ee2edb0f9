"""What a driver delivers: one reading of a device, in the device's own terms.

Phases are the device's (1-3), signs are the device's: the normalizer maps phases, fixes signs and
derives what is missing. A driver fills only what the device said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

_SCALARS = ("total_power", "solar_power", "battery_power", "battery_soc", "energy_forward", "energy_reverse",
            "solar_energy")


@dataclass(slots=True)
class Sample:
    #: Per device phase: current (A; may be unsigned: it then takes the sign of that phase's power).
    current: dict[int, float] = field(default_factory=dict)
    #: Per device phase: active power (W), as the device signs it.
    power: dict[int, float] = field(default_factory=dict)
    #: Per device phase: line-to-neutral voltage (V).
    voltage: dict[int, float] = field(default_factory=dict)
    #: Total active power (W) of what the source's role measures.
    total_power: float | None = None
    #: Values the device reports beside its role (a hybrid inverter's battery, a meter's solar input).
    solar_power: float | None = None
    battery_power: float | None = None
    battery_soc: float | None = None
    #: The device's lifetime energy registers (Wh): ``energy_forward`` counts in the direction its power
    #: is positive (a grid meter's import, an inverter's production), ``energy_reverse`` the other way (a
    #: grid meter's export). ``solar_energy`` is a production register beside the role (like ``solar_power``).
    energy_forward: float | None = None
    energy_reverse: float | None = None
    solar_energy: float | None = None
    #: True when the device spreads one reading over several messages and this one holds only part of
    #: it: no total is then derived from its phases (a sum of one phase is not the grid power).
    partial: bool = False

    def is_empty(self) -> bool:
        return not (self.current or self.power or self.voltage) and all(
            getattr(self, name) is None for name in _SCALARS
        )

    def values(self) -> list[tuple[str, float]]:
        """Every value with a name, for plausibility checks and error messages."""
        out: list[tuple[str, float]] = []
        for name, per_phase in (("current", self.current), ("power", self.power), ("voltage", self.voltage)):
            out += [(f"{name}[L{p}]", v) for p, v in sorted(per_phase.items())]
        for name in _SCALARS:
            value = getattr(self, name)
            if value is not None:
                out.append((name, value))
        return out

    def non_finite(self) -> list[str]:
        return [name for name, value in self.values() if not math.isfinite(value)]
