"""Tasmota energy monitors and SML smart-meter readers over MQTT (``tele/<device>/SENSOR``).

ENERGY shape (a plug or an energy-monitoring module)::

    {"Time": "...", "ENERGY": {"Power": 120, "Voltage": 231, "Current": 0.52, ...}}
    {"Time": "...", "ENERGY": {"Power": [120, 80, 0], "Voltage": [231, 229, 230], "Current": [...]}}

Scalars are device phase 1; arrays are phases 1..3. ``ENERGY.Total`` (kWh, imported; an array is summed
over its phases) and ``ENERGY.Export`` (kWh, exported, where the module measures it) are the device's
registers. SML shape (a script reading a smart meter's optical
port): ``{"Time": "...", "<meter>": {"Power_curr": -350, "Power_L1": ..., ...}}`` — the meter's name and the
value names are those of the user's script, given in ``sml``.
"""

from __future__ import annotations

from typing import Any

from ..config import TasmotaSource
from ..sample import Sample
from .base import DeviceDataError, MqttDriver, load_json, number


class TasmotaDriver(MqttDriver):
    source: TasmotaSource

    @property
    def filters(self) -> list[str]:
        template = self.source.topic or "tele/{device}/SENSOR"
        return [template.format(device=self.source.device)]

    def parse(self, topic: str, payload: bytes) -> Sample | None:
        message = load_json(payload)
        if not isinstance(message, dict):
            raise DeviceDataError("SENSOR payload is not an object")
        sml = self.source.sml
        if sml is None:
            energy = message.get("ENERGY")
            if energy is None:
                return None  # another sensor's telemetry
            if not isinstance(energy, dict):
                raise DeviceDataError("ENERGY is not an object")
            return _energy(energy)
        meter = message.get(sml.meter)
        if meter is None:
            return None
        if not isinstance(meter, dict):
            raise DeviceDataError(f"{sml.meter} is not an object")
        sample = Sample()
        if sml.power and meter.get(sml.power) is not None:
            sample.total_power = number(meter[sml.power], f"{sml.meter}.{sml.power}")
        for target, names in ((sample.power, sml.power_phases), (sample.current, sml.current_phases),
                              (sample.voltage, sml.voltage_phases)):
            for index, name in enumerate(names, start=1):
                if meter.get(name) is not None:
                    target[index] = number(meter[name], f"{sml.meter}.{name}")
        return sample


def _energy(energy: dict[str, Any]) -> Sample:
    sample = Sample()
    for key, target in (("Power", sample.power), ("Current", sample.current), ("Voltage", sample.voltage)):
        value = energy.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if len(values) > 3:
            raise DeviceDataError(f"ENERGY.{key}: more than three phases")
        for index, item in enumerate(values, start=1):
            target[index] = number(item, f"ENERGY.{key}[{index - 1}]")
    if len(sample.power) > 1:
        sample.total_power = sum(sample.power.values())
    for key, name in (("Total", "energy_forward"), ("Export", "energy_reverse")):
        value = energy.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        setattr(sample, name, 1000.0 * sum(number(item, f"ENERGY.{key}") for item in values))
    return sample
