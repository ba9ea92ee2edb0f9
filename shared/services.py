"""The services of the suite, by name, and how to run one or all of them."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from .clock import SYSTEM_CLOCK, Clock
from .config import AmpmqConfig

log = logging.getLogger("ampmq")


class Serve(Protocol):
    """Each service module exposes ``serve(config, clock)``: connect, run until cancelled."""

    def __call__(self, config: AmpmqConfig, clock: Clock = ...) -> Coroutine[Any, Any, None]: ...


#: Service id (as in topics and ``ampmq <id>``) -> module exposing ``serve``.
SERVICES: dict[str, str] = {
    "ocpp-gateway": "services.ocpp_gateway.service",
    "meter-bridge": "services.meter_bridge.service",
    "load-adapters": "services.load_adapters.service",
    "allocator": "services.allocator.service",
}


def serve_function(service: str) -> Callable[..., Coroutine[Any, Any, None]]:
    if service not in SERVICES:
        raise KeyError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    module = importlib.import_module(SERVICES[service])
    serve: Callable[..., Coroutine[Any, Any, None]] = module.serve
    return serve


async def run_services(config: AmpmqConfig, names: list[str], clock: Clock = SYSTEM_CLOCK) -> None:
    """Run the named services in this process until one fails or all are cancelled."""
    async with asyncio.TaskGroup() as group:
        for name in names:
            group.create_task(serve_function(name)(config, clock), name=name)
