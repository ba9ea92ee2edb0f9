"""Every load type by its config ``type``, and the adapter that serves it."""

from __future__ import annotations

from typing import Any

from shared.clock import Clock
from shared.mqtt import Runtime

from .adapter import LoadAdapter
from .boiler import BoilerAdapter, BoilerConfig
from .heat_pump import HeatPumpAdapter, HeatPumpConfig
from .ocpp_charger import OcppChargerAdapter, OcppChargerConfig
from .plug import MqttSwitchConfig, PlugAdapter, ShellyPlugConfig, TasmotaPlugConfig

LoadConfigAny = (
    ShellyPlugConfig | TasmotaPlugConfig | MqttSwitchConfig | OcppChargerConfig | BoilerConfig | HeatPumpConfig
)


def make_adapter(config: LoadConfigAny, runtime: Runtime, clock: Clock) -> LoadAdapter[Any]:
    if isinstance(config, ShellyPlugConfig | TasmotaPlugConfig | MqttSwitchConfig):
        return PlugAdapter(config, runtime, clock)
    if isinstance(config, OcppChargerConfig):
        return OcppChargerAdapter(config, runtime, clock)
    if isinstance(config, BoilerConfig):
        return BoilerAdapter(config, runtime, clock)
    if isinstance(config, HeatPumpConfig):
        return HeatPumpAdapter(config, runtime, clock)
    raise TypeError(f"no adapter for {type(config).__name__}")


__all__ = ["LoadConfigAny", "make_adapter"]
