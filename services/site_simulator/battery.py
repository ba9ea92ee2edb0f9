"""A home battery behind a hybrid inverter doing self-consumption: it charges from what would be
exported and discharges into what would be imported, within its power limits and SOC window.

Its power follows the target with a short time constant (an inverter settles within seconds), and is
spread evenly over the site's phases (a symmetric three-phase inverter).
"""

from __future__ import annotations

import math

from .scenario import BatterySpec


class Battery:
    def __init__(self, spec: BatterySpec, response: float = 3.0) -> None:
        self.spec = spec
        self.soc = spec.soc
        #: Discharge positive (W, AC side).
        self.power = 0.0
        self.response = response
        self.charged_wh = 0.0
        self.discharged_wh = 0.0

    def target(self, site_power: float) -> float:
        """What self-consumption wants given the site's power without the battery (import positive)."""
        spec = self.spec
        if site_power > 0:
            return min(site_power, spec.max_discharge_power) if self.soc > spec.min_soc else 0.0
        return max(site_power, -spec.max_charge_power) if self.soc < spec.max_soc else 0.0

    def step(self, site_power: float, dt: float) -> float:
        """Move towards the self-consumption target for ``dt`` seconds; the battery power (discharge +)."""
        goal = self.target(site_power)
        alpha = 1 - math.exp(-dt / self.response) if self.response > 0 else 1.0
        self.power += (goal - self.power) * alpha
        if abs(self.power) < 1.0:
            self.power = 0.0
        energy = self.power * dt / 3600.0  # Wh, discharge positive
        if energy > 0:
            self.discharged_wh += energy
            self.soc -= energy / self.spec.efficiency / self.spec.capacity * 100
        else:
            self.charged_wh -= energy
            self.soc -= energy * self.spec.efficiency / self.spec.capacity * 100
        self.soc = min(100.0, max(0.0, self.soc))
        return self.power
