"""The meter bridge service (skeleton until the meter-bridge issue lands)."""

from __future__ import annotations

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig
from shared.mqtt import Runtime
from shared.topics import Topics


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    runtime = Runtime("meter-bridge", config.broker_url(), Topics(config.root))
    await runtime.run()
