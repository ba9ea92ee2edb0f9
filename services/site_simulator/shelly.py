"""Shelly devices of the simulated site, on MQTT as the real ones publish (Gen2 RPC shapes):

* the grid meter, a **Shelly Pro 3EM**: ``<prefix>/status/em:0`` with ``a_current``, ``a_voltage``,
  ``a_act_power`` ... ``total_act_power`` (currents unsigned, powers signed: import positive), and its
  energy registers on ``<prefix>/status/emdata:0`` (``a_total_act_energy``, ``a_total_act_ret_energy`` ...
  ``total_act``, ``total_act_ret``, Wh), counted by the meter from its own power as the device does;
* the boiler's relay, a **Shelly Plus plug**: ``Switch.Set`` / ``Switch.GetStatus`` over ``<prefix>/rpc``,
  answers on ``<src>/rpc``, status on ``<prefix>/status/switch:0``; the tank temperature from its add-on
  on ``<prefix>/status/temperature:100`` (``tC``).

Device topics are the devices' own, not ampmq's: the prefixes come from the scenario wiring.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.clock import Clock
from shared.mqtt import RawIncoming, Runtime

from .boiler import Boiler
from .site import SiteState

log = logging.getLogger("ampmq.site-simulator.shelly")
_LETTERS = {"A": "a", "B": "b", "C": "c"}


def pro3em_status(state: SiteState) -> dict[str, Any]:
    """The ``em:0`` status object of a Pro 3EM measuring ``state``'s grid connection."""
    status: dict[str, Any] = {"id": 0}
    total_current = total_power = 0.0
    for phase, letter in _LETTERS.items():
        amps = state.grid_current.get(phase, 0.0)
        volts = state.voltage.get(phase, 230.0)
        watts = amps * volts
        status[f"{letter}_current"] = round(abs(amps), 3)
        status[f"{letter}_voltage"] = round(volts, 1)
        status[f"{letter}_act_power"] = round(watts, 1)
        status[f"{letter}_aprt_power"] = round(abs(watts), 1)
        status[f"{letter}_pf"] = 1.0
        status[f"{letter}_freq"] = 50.0
        total_current += abs(amps)
        total_power += watts
    status.update({"n_current": None, "total_current": round(total_current, 3),
                   "total_act_power": round(total_power, 1), "total_aprt_power": round(abs(total_power), 1),
                   "user_calibrated_phase": []})
    return status


class EnergyRegisters:
    """A Pro 3EM's energy counters: per phase, Wh imported (``act``) and returned (``act_ret``)."""

    def __init__(self) -> None:
        self.act = dict.fromkeys(_LETTERS.values(), 0.0)
        self.act_ret = dict.fromkeys(_LETTERS.values(), 0.0)
        self._t: float | None = None

    def count(self, status: dict[str, Any], t: float) -> None:
        """Add what each phase's power in ``status`` carried since the last count (at simulated time ``t``)."""
        dt = 0.0 if self._t is None else max(0.0, t - self._t)
        self._t = t
        for letter in _LETTERS.values():
            wh = status[f"{letter}_act_power"] * dt / 3600.0
            if wh >= 0:
                self.act[letter] += wh
            else:
                self.act_ret[letter] -= wh

    def status(self) -> dict[str, Any]:
        """The ``emdata:0`` status object, as the device's EMData component reports it."""
        out: dict[str, Any] = {"id": 0}
        for letter in _LETTERS.values():
            out[f"{letter}_total_act_energy"] = round(self.act[letter], 2)
            out[f"{letter}_total_act_ret_energy"] = round(self.act_ret[letter], 2)
        out["total_act"] = round(sum(self.act.values()), 2)
        out["total_act_ret"] = round(sum(self.act_ret.values()), 2)
        return out


class Pro3em:
    """Publishes the grid meter's status and its energy registers."""

    def __init__(self, runtime: Runtime, prefix: str) -> None:
        self.runtime = runtime
        self.prefix = prefix
        self.published = 0
        self.registers = EnergyRegisters()

    async def publish(self, state: SiteState) -> None:
        status = pro3em_status(state)
        self.registers.count(status, state.t)
        # QoS 0, like the device: telemetry is worth nothing late, and the simulation never waits for it
        if await self.runtime.publish(f"{self.prefix}/status/em:0", json.dumps(status), qos=0):
            self.published += 1
        await self.runtime.publish(f"{self.prefix}/status/emdata:0", json.dumps(self.registers.status()), qos=0)

    async def online(self) -> None:
        await self.runtime.publish(f"{self.prefix}/online", "true", retain=True)


class BoilerPlug:
    """The boiler's Shelly plug: obeys ``Switch.Set`` and reports its switch and the tank temperature."""

    def __init__(self, runtime: Runtime, prefix: str, boiler: Boiler, clock: Clock,
                 report_interval: float = 60.0) -> None:
        self.runtime = runtime
        self.prefix = prefix
        self.boiler = boiler
        self.clock = clock
        self.report_interval = report_interval
        self.switches = 0
        self._last = -1e18
        self._sent: tuple[bool, float] | None = None
        runtime.raw_route(f"{prefix}/rpc")(self._on_rpc)

    def switch_status(self) -> dict[str, Any]:
        power = self.boiler.power
        return {"id": 0, "source": "MQTT", "output": self.boiler.relay, "apower": round(power, 1), "voltage": 230.0,
                "current": round(power / 230.0, 3), "aenergy": {"total": round(self.boiler.energy_wh, 3)},
                "temperature": {"tC": 38.0}}

    async def _on_rpc(self, msg: RawIncoming) -> None:
        try:
            request = json.loads(msg.payload)
            method, src, rid = request["method"], request["src"], request.get("id")
            params = request.get("params") or {}
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("boiler plug: bad RPC request %r: %s", msg.payload[:200], exc)
            return
        answer: dict[str, Any] = {"id": rid, "src": self.prefix, "dst": src}
        if method == "Switch.Set" and isinstance(params.get("on"), bool):
            answer["result"] = {"was_on": self.boiler.relay}
            if params["on"] != self.boiler.relay:
                self.switches += 1
            self.boiler.relay = params["on"]
        elif method == "Switch.GetStatus":
            answer["result"] = self.switch_status()
        else:
            answer["error"] = {"code": 404, "message": f"No handler for {method}"}
        await self.runtime.publish(f"{src}/rpc", json.dumps(answer))
        self._last = -1e18  # report the new state at once

    async def report(self) -> None:
        """Publish the switch status on change, and everything every ``report_interval``."""
        now = self.clock.monotonic()
        key = (self.boiler.relay, round(self.boiler.power))
        if key == self._sent and now - self._last < self.report_interval:
            return
        self._sent, self._last = key, now
        await self.runtime.publish(f"{self.prefix}/status/switch:0", json.dumps(self.switch_status()), qos=0)
        celsius = round(self.boiler.temperature, 1)
        await self.runtime.publish(f"{self.prefix}/status/temperature:100", json.dumps(
            {"id": 100, "tC": celsius, "tF": round(celsius * 1.8 + 32, 1)}), qos=0)

    async def online(self) -> None:
        await self.runtime.publish(f"{self.prefix}/online", "true", retain=True)
