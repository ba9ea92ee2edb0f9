"""The services of the suite, by name, and how to run one or all of them."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from . import heap, trace
from .clock import SYSTEM_CLOCK, Clock
from .config import AmpmqConfig, ConfigError
from .metrics import Exporter, exporting

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


async def supervise(name: str, config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK, backoff_max: float = 30.0) -> None:
    """Run one service; restart it with backoff when it crashes. A bad config stops it for good."""
    delay = 1.0
    while True:
        started = clock.monotonic()
        try:
            await serve_function(name)(config, clock)
            return
        except ConfigError:
            raise
        except Exception:
            log.exception("service %s crashed; restarting in %.0fs", name, delay)
        if clock.monotonic() - started > 60:
            delay = 1.0
        await asyncio.sleep(delay)
        delay = min(delay * 2, backoff_max)


async def run_services(config: AmpmqConfig, names: list[str], clock: Clock = SYSTEM_CLOCK,
                       exporter: Exporter | None = None) -> None:
    """Run the named services in this process, each supervised, until cancelled. A service whose config
    section is unusable stops them all with its :class:`ConfigError` (the first one), not a task group's
    traceback: the command prints the message and exits with status 2.

    With a ``metrics`` port configured, one endpoint serves every service of this process (``exporter``,
    when given, is the one used: tests read its bound port)."""
    if exporter is None and config.metrics.enabled:
        exporter = Exporter()
    try:
        with exporting(exporter):  # the services' runtimes, created in the tasks below, register with it
            async with asyncio.TaskGroup() as group:
                group.create_task(heap.keep_frozen(), name="heap")
                if trace.enabled():
                    group.create_task(trace.watch_lag(), name="trace-lag")
                if exporter is not None:
                    group.create_task(exporter.serve(config.metrics), name="metrics")
                for name in names:
                    group.create_task(supervise(name, config, clock), name=name)
    except* ConfigError as errors:
        raise _first_config_error(errors) from None


def _first_config_error(group: BaseExceptionGroup[ConfigError]) -> ConfigError:
    first = group.exceptions[0]
    return first if isinstance(first, ConfigError) else _first_config_error(first)
