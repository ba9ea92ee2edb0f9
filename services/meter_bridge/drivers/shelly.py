"""Shelly energy meters over MQTT: Pro 3EM / Pro EM (Gen2 RPC) and 3EM / EM (Gen1).

Gen2 (``prefix`` is the device's MQTT prefix, ``shellypro3em-<mac>`` by default):

* ``<prefix>/status/em:0`` – the full three-phase status (``a_current``, ``a_voltage``, ``a_act_power``,
  ``b_...``, ``c_...``, ``total_act_power``); phases a/b/c are device phases 1/2/3.
* ``<prefix>/status/emdata:0`` – the energy registers of ``em:0``: ``total_act`` (Wh imported, the sum of
  the phases' ``*_total_act_energy``) and ``total_act_ret`` (Wh returned), each a lifetime counter.
* ``<prefix>/status/em1:<n>`` – one channel of a Pro EM / Pro 3EM in monophase profile
  (``current``, ``voltage``, ``act_power``); channel n is device phase n+1.
* ``<prefix>/events/rpc`` – ``NotifyStatus`` / ``NotifyFullStatus`` notifications carrying the same objects
  under ``params``; any other method (``NotifyEvent``) holds nothing for the measurement.

Gen1 (``prefix`` is ``shellies/<id>``): ``<prefix>/emeter/<n>/{power,current,voltage}``, one plain number
per topic; emeter n is device phase n+1. Current is unsigned on every Shelly; it takes the sign of the
phase's power.
"""

from __future__ import annotations

from typing import Any

from ..config import ShellySource
from ..sample import Sample
from .base import DeviceDataError, MqttDriver, load_json, number, optional_number

_GEN2_PHASES = {"a": 1, "b": 2, "c": 3}


class ShellyDriver(MqttDriver):
    source: ShellySource

    def __init__(self, source: ShellySource) -> None:
        super().__init__(source)
        self._prefix = source.prefix.rstrip("/")
        #: Gen1 publishes one value per topic: the latest of each, per emeter.
        self._gen1: dict[int, dict[str, float]] = {}

    @property
    def filters(self) -> list[str]:
        if self.source.generation == 1:
            return [f"{self._prefix}/emeter/+/+"]
        return [f"{self._prefix}/status/+", f"{self._prefix}/events/rpc"]

    def holds_state(self, topic_filter: str) -> bool:
        return not topic_filter.endswith("/events/rpc")  # NotifyStatus: one component's change at a time

    def parse(self, topic: str, payload: bytes) -> Sample | None:
        if self.source.generation == 1:
            return self._parse_gen1(topic, payload)
        rest = topic[len(self._prefix) + 1 :]
        if rest == "events/rpc":
            message = load_json(payload)
            if not isinstance(message, dict):
                raise DeviceDataError("an RPC notification is a JSON object")
            if message.get("method") not in ("NotifyStatus", "NotifyFullStatus"):
                return None  # NotifyEvent and the like: nothing for the measurement
            params = message.get("params")
            if not isinstance(params, dict):
                raise DeviceDataError("NotifyStatus without params")
            samples = [s for k, v in params.items() if (s := self._component(k, v)) is not None]
            return _merge(samples) if samples else None
        if rest.startswith("status/"):
            return self._component(rest[len("status/") :], load_json(payload))
        return None

    def _component(self, name: str, status: Any) -> Sample | None:
        kind, _, index = name.partition(":")
        if kind not in ("em", "em1", "emdata"):
            return None  # em1data (per channel), sys, wifi ...: nothing for the measurement
        if not isinstance(status, dict):
            raise DeviceDataError(f"{name}: status is not an object")
        sample = Sample()
        if kind == "emdata":
            sample.energy_forward = optional_number(status, "total_act", name)
            sample.energy_reverse = optional_number(status, "total_act_ret", name)
            return None if sample.is_empty() else sample
        if kind == "em":
            for letter, phase in _GEN2_PHASES.items():
                _put(sample, phase, status, f"{letter}_current", f"{letter}_act_power", f"{letter}_voltage", name)
            sample.total_power = optional_number(status, "total_act_power", name)
        else:
            if not index.isdigit():
                raise DeviceDataError(f"{name}: no channel number")
            _put(sample, int(index) + 1, status, "current", "act_power", "voltage", name)
        return sample

    def _parse_gen1(self, topic: str, payload: bytes) -> Sample | None:
        parts = topic[len(self._prefix) + 1 :].split("/")
        if len(parts) != 3 or parts[0] != "emeter" or not parts[1].isdigit():
            return None
        quantity = parts[2]
        if quantity not in ("power", "current", "voltage"):
            return None  # energy, returned_energy, total ...
        phase = int(parts[1]) + 1
        try:
            text = payload.decode()
        except UnicodeDecodeError as exc:
            raise DeviceDataError(f"{topic}: not text") from exc
        self._gen1.setdefault(phase, {})[quantity] = number(text, topic)
        # The device publishes every emeter each interval: hand over the latest of all of them, so a
        # phase's current keeps its power's sign and the grid power is the sum over all phases.
        sample = Sample()
        for emeter, cache in self._gen1.items():
            if "power" in cache:
                sample.power[emeter] = cache["power"]
            if "current" in cache:
                sample.current[emeter] = cache["current"]
            if "voltage" in cache:
                sample.voltage[emeter] = cache["voltage"]
        return sample


def _put(sample: Sample, phase: int, status: dict[str, Any], current: str, power: str, voltage: str, what: str) -> None:
    if (value := optional_number(status, current, what)) is not None:
        sample.current[phase] = value
    if (value := optional_number(status, power, what)) is not None:
        sample.power[phase] = value
    if (value := optional_number(status, voltage, what)) is not None:
        sample.voltage[phase] = value


def _merge(samples: list[Sample]) -> Sample:
    merged = Sample()
    for s in samples:
        merged.current.update(s.current)
        merged.power.update(s.power)
        merged.voltage.update(s.voltage)
        for name in ("total_power", "energy_forward", "energy_reverse"):
            if getattr(s, name) is not None:
                setattr(merged, name, getattr(s, name))
    return merged
