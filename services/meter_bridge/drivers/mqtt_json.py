"""Any MQTT topic as a meter: a JSON path (or the raw payload), a unit, a scale and the phase.

This is how Home Assistant, Node-RED, zigbee2mqtt or a home-made ESP feed ampmq. The quantity follows
from the unit: A -> current, W/kW -> power (the source role's, or ``quantity``), V -> voltage,
% -> battery state of charge, Wh/kWh -> an energy register (the role's forward one: grid import or solar
production; ``quantity: export_energy`` the grid export, ``solar_energy`` a solar register beside the role).
"""

from __future__ import annotations

from typing import Any

import aiomqtt

from ..config import JsonValue, MqttJsonSource
from ..sample import Sample
from .base import DeviceDataError, MqttDriver, load_json, number


class MqttJsonDriver(MqttDriver):
    source: MqttJsonSource

    @property
    def filters(self) -> list[str]:
        return list(dict.fromkeys(v.topic for v in self.source.values))

    def parse(self, topic: str, payload: bytes) -> Sample | None:
        sample = Sample()
        decoded: Any = None
        matching = [spec for spec in self.source.values if aiomqtt.Topic(topic).matches(spec.topic)]
        # per-phase values on other topics: this message is only part of the reading
        sample.partial = any(spec.phase is not None and spec not in matching for spec in self.source.values)
        for spec in matching:
            if spec.path is None:
                try:
                    raw: Any = payload.decode().strip()
                except UnicodeDecodeError as exc:
                    raise DeviceDataError(f"{topic}: payload is not text") from exc
            else:
                if decoded is None:
                    decoded = load_json(payload)
                raw = extract(decoded, spec.path)
            _put(sample, spec, number(raw, spec.path or topic))
        return None if sample.is_empty() else sample


def extract(document: Any, path: str) -> Any:
    """Follow a dotted path (``a.b.0.c``) through objects and arrays."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            raise DeviceDataError(f"path {path!r}: no {part!r} in the payload")
    return node


def _put(sample: Sample, spec: JsonValue, raw: float) -> None:
    value = raw * spec.scale
    if spec.unit in ("kW", "kWh"):
        value *= 1000.0
    if spec.unit in ("Wh", "kWh"):
        name = {"export_energy": "energy_reverse", "solar_energy": "solar_energy"}.get(spec.quantity or "",
                                                                                      "energy_forward")
        setattr(sample, name, value)
    elif spec.unit == "%":
        sample.battery_soc = value
    elif spec.unit == "V":
        if spec.phase is None:
            for phase in (1, 2, 3):
                sample.voltage[phase] = value
        else:
            sample.voltage[spec.phase] = value
    elif spec.unit == "A":
        assert spec.phase is not None  # the config requires it
        sample.current[spec.phase] = value
    elif spec.quantity == "solar_power":
        sample.solar_power = value
    elif spec.quantity == "battery_power":
        sample.battery_power = value
    elif spec.phase is None:
        sample.total_power = value
    else:
        sample.power[spec.phase] = value
