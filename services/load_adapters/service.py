"""The load adapters service (skeleton until the load-adapters issue lands): validates setpoints."""

from __future__ import annotations

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig
from shared.models import Setpoint
from shared.mqtt import Incoming, Runtime
from shared.topics import Leaf, Topics


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    topics = Topics(config.root)
    runtime = Runtime("load-adapters", config.broker_url(), topics)

    @runtime.route(topics.load_filter(Leaf.SETPOINT), Setpoint)
    async def on_setpoint(msg: Incoming[Setpoint]) -> None:
        runtime.log.debug("setpoint for %s", msg.payload.load)

    await runtime.run()
