"""The OCPP gateway service (skeleton until the gateway issue lands): validates charger commands."""

from __future__ import annotations

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig
from shared.models import OcppCommand
from shared.mqtt import Incoming, Runtime
from shared.topics import Leaf, Topics


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    topics = Topics(config.root)
    runtime = Runtime("ocpp-gateway", config.broker_url(), topics)

    @runtime.route(topics.charger_filter(f"{Leaf.CMD}/+"), OcppCommand)
    async def on_command(msg: Incoming[OcppCommand]) -> None:
        raise ValueError(f"charger {msg.ref.id if msg.ref else '?'} is not connected")

    await runtime.run()
