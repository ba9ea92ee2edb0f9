"""One injectable clock for every service, so a simulated day can run at 60x or more."""

from __future__ import annotations

import asyncio
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
