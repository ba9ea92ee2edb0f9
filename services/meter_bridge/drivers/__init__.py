"""Meter drivers: one module per device family, built from a source's config by :func:`build_driver`."""

from __future__ import annotations

from shared.clock import Clock

from ..config import (
    DsmrSource,
    HomeWizardSource,
    ModbusSource,
    MqttJsonSource,
    ShellySource,
    SourceBase,
    TasmotaSource,
)
from .base import DeviceDataError, DeviceGone, MqttDriver, Sink, TaskDriver
from .dsmr import DsmrDriver
from .homewizard import HomeWizardDriver
from .modbus import ModbusDriver
from .mqtt_json import MqttJsonDriver
from .shelly import ShellyDriver
from .tasmota import TasmotaDriver

Driver = MqttDriver | TaskDriver

__all__ = ["DeviceDataError", "DeviceGone", "Driver", "MqttDriver", "Sink", "TaskDriver", "build_driver"]


def build_driver(source: SourceBase, clock: Clock) -> Driver:
    if isinstance(source, ShellySource):
        return ShellyDriver(source)
    if isinstance(source, TasmotaSource):
        return TasmotaDriver(source)
    if isinstance(source, MqttJsonSource):
        return MqttJsonDriver(source)
    if isinstance(source, HomeWizardSource):
        return HomeWizardDriver(source, clock)
    if isinstance(source, DsmrSource):
        return DsmrDriver(source)
    if isinstance(source, ModbusSource):
        return ModbusDriver(source, clock)
    raise TypeError(f"no driver for {type(source).__name__}")
