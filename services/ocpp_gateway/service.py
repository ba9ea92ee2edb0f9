"""The OCPP gateway service: ``serve(config, clock)`` runs the central system until cancelled."""

from __future__ import annotations

import asyncio
import contextlib

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig
from shared.mqtt import Runtime
from shared.topics import Topics

from .config import GatewayConfig
from .gateway import Gateway

SERVICE = "ocpp-gateway"


def gateway_for(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> Gateway:
    """The gateway of ``config`` with its own MQTT runtime (not yet running)."""
    settings = config.section("ocpp_gateway", GatewayConfig)
    runtime = Runtime(SERVICE, config.broker(), Topics(config.root))
    return Gateway(settings, runtime, clock)


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    gateway = gateway_for(config, clock)
    mqtt = asyncio.get_running_loop().create_task(gateway.runtime.run(), name="ocpp-gateway-mqtt")
    delay = 1.0
    try:
        with contextlib.suppress(TimeoutError):
            await gateway.runtime.wait_connected(10)  # chargers are served even while the broker is away
        while True:
            try:
                async with gateway.running():
                    # asyncio.wait, unlike awaiting the task, leaves MQTT up while running() says goodbye
                    await asyncio.wait([mqtt])
                    mqtt.result()  # the runtime only ends by a bug: let it surface
                    return
            except OSError as exc:  # the port is taken (or the certificate unreadable): say so, try again
                await gateway.runtime.report_error(
                    gateway.runtime.availability_topic, "listen_failed",
                    f"cannot listen on {gateway.config.host}:{gateway.config.port}: {exc}; retrying in {delay:.0f}s")
                await clock.sleep(delay)
                delay = min(delay * 2, 30.0)
    finally:
        await gateway.runtime.close()
        mqtt.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mqtt
