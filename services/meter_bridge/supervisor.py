"""Keeps a task driver running: a crash or a lost device restarts it after a growing pause.

The pause doubles from ``backoff_initial`` up to ``backoff_max`` and starts anew once a run has
delivered something. Every failure is handed to ``on_failure`` (the bridge marks the source offline and
reports it), while the other drivers go on publishing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.clock import Clock

from .drivers import DeviceDataError, DeviceGone, Sink, TaskDriver

log = logging.getLogger("ampmq.meter-bridge.supervisor")


class Supervisor:
    def __init__(
        self,
        driver: TaskDriver,
        sink: Sink,
        clock: Clock,
        on_failure: Callable[[str, float], Awaitable[None]],
        delivered: Callable[[], int],
    ) -> None:
        self.driver = driver
        self.sink = sink
        self.clock = clock
        self.on_failure = on_failure
        self.delivered = delivered
        self.restarts = 0

    async def run(self) -> None:
        source = self.driver.source
        delay = source.backoff_initial
        while True:
            before = self.delivered()
            try:
                await self.driver.run(self.sink)
                reason = "driver stopped"
            except asyncio.CancelledError:
                raise
            except (DeviceGone, DeviceDataError) as exc:
                reason = str(exc)
            except Exception as exc:  # a driver bug must not take the bridge down
                log.exception("driver of source %s crashed", source.id)
                reason = f"{type(exc).__name__}: {exc}"
            if self.delivered() > before:
                delay = source.backoff_initial  # it worked for a while: start the backoff anew
            self.restarts += 1
            await self.on_failure(reason, delay)
            await self.clock.sleep(delay)
            delay = min(delay * 2, source.backoff_max)
