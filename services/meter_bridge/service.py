"""The meter bridge service: real meters in, one normalized site measurement per site out."""

from __future__ import annotations

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig
from shared.mqtt import Runtime
from shared.topics import Topics

from .bridge import MeterBridge
from .config import MeterBridgeConfig

SERVICE = "meter-bridge"


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    section = config.section("meter_bridge", MeterBridgeConfig)
    runtime = Runtime(SERVICE, config.broker_url(), Topics(config.root))
    MeterBridge(section, runtime, clock).install()
    await runtime.run()
