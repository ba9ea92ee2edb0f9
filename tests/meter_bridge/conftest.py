"""Helpers for the meter bridge tests: a bridge on the session's real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from services.meter_bridge.bridge import MeterBridge
from services.meter_bridge.config import MeterBridgeConfig
from services.meter_bridge.service import SERVICE
from shared.clock import SYSTEM_CLOCK
from shared.models import SiteMeasurement
from shared.mqtt import Runtime
from shared.probe import Received
from shared.topics import Topics

TOPICS = Topics()


@contextlib.asynccontextmanager
async def running_bridge(url: str, sites: dict[str, Any]) -> AsyncIterator[MeterBridge]:
    """A meter bridge for ``sites`` (the ``meter_bridge.sites`` section), connected to ``url``."""
    config = MeterBridgeConfig.model_validate({"sites": sites})
    runtime = Runtime(SERVICE, url, TOPICS, backoff_initial=0.1)
    bridge = MeterBridge(config, runtime, SYSTEM_CLOCK).install()
    task = asyncio.get_running_loop().create_task(runtime.run())
    try:
        await runtime.wait_connected(10)
        yield bridge
    finally:
        await runtime.close()
        await stop(task)


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` until it is done: ``Runtime.run`` can swallow one cancellation when the MQTT
    client's disconnect fails during it (it then takes the MqttError for a lost connection)."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


def measurement(msg: Received) -> SiteMeasurement:
    return msg.model(SiteMeasurement)


def currents(msg: Received) -> dict[str, float]:
    return {p.value: round(r.value, 3) for p, r in measurement(msg).grid_current.items()}


def payload(obj: Any) -> str:
    return json.dumps(obj)
