"""Helpers: run the load adapters service against the session's real Mosquitto, build setpoints."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from services.load_adapters.adapter import SERVICE
from services.load_adapters.service import LoadAdapters, LoadAdaptersConfig
from shared.models import Mode, Phase, Reason, Setpoint
from shared.mqtt import Runtime, serving
from shared.topics import Topics

T = Topics()

#: Short intervals so the suite stays fast.
FAST: dict[str, Any] = {"tick": 0.1, "state_interval": 2.0, "confirm_timeout": 0.6, "retry_initial": 0.3,
                        "retry_max": 1.0, "startup_grace": 0.3}


@contextlib.asynccontextmanager
async def running(mqtt_url: str, loads: list[dict[str, Any]]) -> AsyncIterator[LoadAdapters]:
    """The load adapters service for ``loads``, connected, for the duration of the block."""
    config = LoadAdaptersConfig.model_validate({"loads": loads})
    runtime = Runtime(SERVICE, mqtt_url, T)
    adapters = LoadAdapters(config, runtime)
    async with serving(runtime):
        try:
            yield adapters
        finally:
            await adapters.stop()


def setpoint(site: str, load: str, *, on: bool = False, current: float = 0.0, seconds: float = 60.0,
             reason: Reason = Reason.OK, phases: list[Phase] | None = None) -> Setpoint:
    return Setpoint(site=site, load=load, on=on, current=current, phases=phases or [], mode=Mode.STANDARD,
                    reason=reason, valid_until=datetime.now(UTC) + timedelta(seconds=seconds))



#: Short profile lifetimes and intervals for charger tests.
FAST_CHARGER: dict[str, Any] = {**FAST, "lifetime": 3.0, "renew_every": 1.0, "command_timeout": 5.0,
                                "compliance_grace": 0.2, "idle_after": 1.0}


@contextlib.asynccontextmanager
async def ocpp_gateway(mqtt_url: str, site: str, chargers: list[str]) -> AsyncIterator[Any]:
    """The real OCPP gateway on a free port, for ``chargers`` (charge point ids) on ``site``."""
    from services.ocpp_gateway.config import GatewayConfig
    from services.ocpp_gateway.gateway import Gateway

    config = GatewayConfig.model_validate({"host": "127.0.0.1", "port": 0, "default_site": site,
                                           "chargers": {cp: {"site": site, "auth": "none"} for cp in chargers}})
    runtime = Runtime("ocpp-gateway", mqtt_url, T)
    gateway = Gateway(config, runtime)
    async with serving(runtime), gateway.running():
        yield gateway
