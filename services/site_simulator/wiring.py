"""The config every service gets for a scenario: the gateway knows the chargers, the meter bridge reads
the Shelly grid meter and the SunSpec battery and inverter, the load adapters drive the chargers and the
boiler's plug, the allocator starts from the scenario's limits and modes.

Only load types the load adapters service offers are configured; :func:`missing_parts` says what the
demo has to go without (and the demo says so on screen and in the report).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

from shared.config import AmpmqConfig
from shared.topics import slugify

from .grid_operator import allocator_policy
from .scenario import Scenario

#: Timers of the whole suite, in simulated seconds. At a high speed one hiccup of the event loop is many
#: simulated seconds, so staleness limits are wider than on a real site; the anti-flicker timers keep
#: their defaults.
STALE_AFTER = 120.0
SETPOINT_LIFETIME = 300.0
#: Decide at most every 10 s and at least every 60 s; adapters check their devices every 5 s. Each
#: message per simulated second is ``speed`` messages per real second: these keep the whole suite in one
#: process (and its broker) well inside what it can carry.
MIN_INTERVAL = 10.0
REFRESH = 60.0
ADAPTER_TICK = 5.0
STATE_INTERVAL = 60.0
LOAD_STALE_AFTER = 3 * STATE_INTERVAL
MEASUREMENT_COALESCE = 10.0
MODBUS_POLL = 15.0
#: A charging profile's lifetime and renewal, and how long a command may take through the gateway: a
#: round trip of 100 ms through broker, gateway and charger is half a simulated minute at 300x.
PROFILE_LIFETIME = 600.0
PROFILE_RENEW = 120.0
COMMAND_TIMEOUT = 300.0
CONFIRM_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Ports:
    broker_url: str
    gateway_port: int
    modbus_port: int


@dataclass(slots=True)
class Wiring:
    config: AmpmqConfig
    meter_prefix: str
    boiler_prefix: str | None
    #: What the demo runs without (service or adapter missing), in words.
    missing: list[str] = field(default_factory=list)


def load_types() -> set[str]:
    """The ``type`` values the load adapters service accepts."""
    try:
        from services.load_adapters import registry
    except ImportError:
        return set()
    types: set[str] = set()
    for member in typing.get_args(registry.LoadConfigAny) or (registry.LoadConfigAny,):
        annotation = getattr(member, "model_fields", {}).get("type")
        if annotation is not None:
            types.update(str(a) for a in typing.get_args(annotation.annotation))
    return types


def charger_id(scenario_id: str) -> str:
    """The OCPP charge point id a simulated charger connects with."""
    return scenario_id.upper().replace("-", "_")


def build(base: AmpmqConfig, scenario: Scenario, ports: Ports) -> Wiring:
    site = scenario.site
    phases = [str(p) for p in scenario.grid.phases]
    meter_prefix = f"shellypro3em-sim-{site}"
    boiler_prefix = f"shellyplusplugs-sim-{site}-boiler" if scenario.boiler else None
    types = load_types()
    missing: list[str] = []

    gateway = {
        "host": "127.0.0.1", "port": ports.gateway_port, "default_site": site,
        "chargers": {charger_id(c.id): {"site": site, "auth": "none"} for c in scenario.chargers},  # on loopback
        "heartbeat_interval": 300,
        # on the scaled clock: the gateway's 10 s cap would be 33 ms of real time at 300x
        "call_timeout": COMMAND_TIMEOUT, "max_call_timeout": COMMAND_TIMEOUT,
    }

    sources: list[dict[str, Any]] = [
        {"id": "grid", "driver": "shelly", "prefix": meter_prefix, "role": "grid",
         "phase_map": {i + 1: p for i, p in enumerate(("A", "B", "C")) if p in phases}},
    ]
    if scenario.solar.peak_power > 0:
        sources.append({"id": "solar", "driver": "modbus", "role": "solar", "host": "127.0.0.1",
                        "port": ports.modbus_port, "unit": 2, "poll_interval": MODBUS_POLL, "timeout": 3.0,
                        "feeds": ["solar_power"]})
    if scenario.battery is not None:
        sources.append({"id": "battery", "driver": "modbus", "role": "battery", "host": "127.0.0.1",
                        "port": ports.modbus_port, "unit": 1, "poll_interval": MODBUS_POLL, "timeout": 3.0,
                        "feeds": ["battery_soc", "battery_power"]})
    meter_bridge = {"sites": {site: {"sources": sources, "stale_after": STALE_AFTER, "phases": phases,
                                     "nominal_voltage": scenario.grid.voltage,
                                     "coalesce": MEASUREMENT_COALESCE}}}

    loads: list[dict[str, Any]] = []
    if "ocpp_charger" in types:
        for c in scenario.chargers:
            loads.append({
                "type": "ocpp_charger", "site": site, "id": c.id, "name": c.id,
                "charger": slugify(charger_id(c.id)), "connector": 1,
                "legs": {str(k): str(v) for k, v in c.legs.items()},
                "phases": ["L1", "L2", "L3"][: c.phases],
                "max_current": c.max_current, "charger_max_current": c.max_current,
                "lifetime": PROFILE_LIFETIME, "renew_every": PROFILE_RENEW, "command_timeout": COMMAND_TIMEOUT,
                # what the installer knows of the charger's quirks
                "stack_level_zero_only": c.stack_level_zero_only, "relative_only": c.relative_only,
                "relative_start": c.relative_from,
                **({"phase_switching": "ocpp"} if c.phase_switching else {}),
                **({"circuit": c.circuit} if c.circuit else {}),
            })
    elif scenario.chargers:
        missing.append("load_adapters has no ocpp_charger adapter: the chargers get no charging profile and "
                       "charge at their full rating")
    if scenario.boiler is not None and boiler_prefix is not None:
        b = scenario.boiler
        if "boiler" in types:
            loads.append({"type": "boiler", "site": site, "id": b.id, "name": "boiler",
                          "legs": {"L1": str(b.phase)}, "phases": ["L1"], "control": "onoff",
                          "relay": {"driver": "shelly", "prefix": boiler_prefix}, "rated_power": b.power,
                          "temperature": {"topic": f"{boiler_prefix}/status/temperature:100", "field": "tC"},
                          "min_temp": b.min_temperature, "max_temp": b.max_temperature})
        elif "shelly_plug" in types:
            loads.append({"type": "shelly_plug", "site": site, "id": b.id, "name": "boiler",
                          "legs": {"L1": str(b.phase)}, "phases": ["L1"], "prefix": boiler_prefix,
                          "rated_power": b.power})
            missing.append("load_adapters has no boiler adapter: the boiler runs as a plain Shelly plug "
                           "(no forced heating below its minimum temperature)")
        else:
            missing.append("load_adapters has no Shelly plug adapter: the boiler is not controlled")

    settings: dict[str, Any] = {
        "phases": phases, "fuse_limit": scenario.grid.fuse, "margin": scenario.grid.margin,
        "voltage": scenario.grid.voltage,
        "timers": {"stale_after": STALE_AFTER, "setpoint_lifetime": SETPOINT_LIFETIME,
                   "min_interval": MIN_INTERVAL, "refresh": REFRESH},
    }
    if scenario.battery is not None:
        settings["battery"] = {"min_soc": scenario.battery.reserve_soc, "target_soc": scenario.battery.target_soc,
                               "max_charge_power": scenario.battery.max_charge_power,
                               "max_discharge_power": scenario.battery.max_discharge_power}
    for load in loads:
        load.update({"tick": ADAPTER_TICK, "state_interval": STATE_INTERVAL, "confirm_timeout": CONFIRM_TIMEOUT,
                     "retry_initial": CONFIRM_TIMEOUT, "retry_max": 10 * CONFIRM_TIMEOUT})
    if scenario.circuits:
        settings["circuits"] = [{"id": c.id, "limit": c.limit} for c in scenario.circuits]
    settings.update(scenario.allocator)
    load_settings: dict[str, dict[str, Any]] = {}
    for c in scenario.chargers:
        load_settings[f"{site}/{c.id}"] = {"mode": str(c.mode), "priority": c.priority,
                                           **({"phases": c.switch_phases} if c.phase_switching else {})}
    if scenario.boiler is not None:
        load_settings[f"{site}/{scenario.boiler.id}"] = {"mode": str(scenario.boiler.mode),
                                                         "priority": scenario.boiler.priority}
    # A load state counts for three of the adapters' state intervals (they re-send an unchanged one each interval).
    allocator = {"sites": {site: settings}, "loads": load_settings, "load_stale_after": LOAD_STALE_AFTER}
    if scenario.grid_operator is not None:
        allocator["grid_limits"] = {site: allocator_policy(scenario.grid_operator)}

    config = base.model_copy(update={
        "mqtt_url": ports.broker_url, "ocpp_gateway": gateway, "meter_bridge": meter_bridge,
        "load_adapters": {"loads": loads}, "allocator": allocator,
    })
    return Wiring(config, meter_prefix, boiler_prefix, missing)
