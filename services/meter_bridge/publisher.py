"""Coalescing: at most one measurement per ``interval`` per site, the first of a burst without delay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from shared.clock import Clock


class CoalescingPublisher:
    """Calls ``publish`` when asked, but not more often than every ``interval`` seconds.

    A request inside the interval is folded into one publish at its end, which then carries the latest
    state; a request after a quiet interval publishes at once.
    """

    def __init__(
        self,
        interval: float,
        clock: Clock,
        publish: Callable[[], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._publish = publish
        self._spawn = spawn
        self._last: float | None = None
        self._pending = False
        self.published = 0

    async def request(self) -> None:
        if self._pending:
            return
        now = self._clock.monotonic()
        wait = 0.0 if self._last is None else self._last + self.interval - now
        if wait <= 0:
            await self._fire(now)
            return
        self._pending = True
        self._spawn(self._later(wait))

    async def _later(self, wait: float) -> None:
        try:
            await self._clock.sleep(wait)
        finally:
            self._pending = False
        await self._fire(self._clock.monotonic())

    async def _fire(self, now: float) -> None:
        self._last = now
        self.published += 1
        await self._publish()
