"""One injectable clock for every service, so a simulated day can run at 60x or more."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time, monotonic time and sleeping, all on one time base."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Time that runs ``speed`` times faster than real time, starting at ``start``."""

    def __init__(self, start: datetime, speed: float = 60.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs a timezone-aware start")
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._t0 = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


SYSTEM_CLOCK: Clock = SystemClock()


def real_seconds(clock: Clock, seconds: float) -> float:
    """``seconds`` of ``clock`` time in the event loop's (real) seconds: on a clock running 120 times faster,
    a sixth of a real second for 20 s. (Any other clock counts real seconds.)"""
    return seconds / clock.speed if isinstance(clock, ScaledClock) else seconds


def clock_timeout(clock: Clock, seconds: float) -> asyncio.Timeout:
    """``asyncio.timeout`` counted in ``clock``'s seconds: a 20 s command timeout is over when 20 s of the
    service's own clock have passed (:func:`real_seconds`)."""
    return asyncio.timeout(real_seconds(clock, seconds))


async def wait_for_event(clock: Clock, event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` of ``clock`` time pass. On the system and scaled clocks this
    takes no task of its own (a thousand load loops waiting this way each tick made it a hot spot)."""
    if event.is_set() or seconds <= 0:
        return
    if isinstance(clock, SystemClock | ScaledClock):
        with contextlib.suppress(TimeoutError):
            async with clock_timeout(clock, seconds):
                await event.wait()
        return
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()
