"""Any relay a load can be switched with, chosen by ``driver`` in the config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from .mqtt_switch import MqttRelay, MqttRelayConfig
from .relay import RelayDriver
from .shelly_plug import ShellyRelay, ShellyRelayConfig
from .tasmota_plug import TasmotaRelay, TasmotaRelayConfig

if TYPE_CHECKING:
    from .adapter import LoadAdapter

RelayConfig = Annotated[ShellyRelayConfig | TasmotaRelayConfig | MqttRelayConfig, Field(discriminator="driver")]


def make_relay(adapter: LoadAdapter[Any], config: ShellyRelayConfig | TasmotaRelayConfig | MqttRelayConfig,
               label: str) -> RelayDriver:
    """The driver for ``config``."""
    if isinstance(config, ShellyRelayConfig):
        return ShellyRelay(adapter, config, label)
    if isinstance(config, TasmotaRelayConfig):
        return TasmotaRelay(adapter, config, label)
    return MqttRelay(adapter, config, label)


__all__ = ["RelayConfig", "make_relay"]
