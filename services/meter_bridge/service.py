"""The meter bridge service: real meters in, one normalized site measurement per site out."""

from __future__ import annotations

import asyncio
import contextlib

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig
from shared.mqtt import Runtime
from shared.topics import Topics

from .bridge import MeterBridge
from .config import MeterBridgeConfig

SERVICE = "meter-bridge"


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    section = config.section("meter_bridge", MeterBridgeConfig)
    runtime = Runtime(SERVICE, config.broker(), Topics(config.root))
    bridge = MeterBridge(section, runtime, clock).install()
    running = asyncio.get_running_loop().create_task(runtime.run())
    try:
        await asyncio.wait([running])  # runs until the service is cancelled
    finally:
        if not running.done():
            # still connected: mark the sources offline before the runtime says goodbye
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bridge.shutdown(), 2)
            await runtime.close()  # says the service is offline, stops drivers and tickers
            while not running.done():  # the runtime may take one cancellation for a lost connection
                running.cancel()
                await asyncio.wait([running], timeout=1)
    running.result()
