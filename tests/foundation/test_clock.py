"""Waiting on the clock's time base: a scaled clock's seconds pass ``speed`` times faster, an event ends the
wait at once, and a clock of a test's own is honoured too."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from shared.clock import SYSTEM_CLOCK, ScaledClock, real_seconds, wait_for_event


async def test_a_scaled_clock_waits_its_own_seconds() -> None:
    clock = ScaledClock(datetime(2026, 12, 1, tzinfo=UTC), speed=100.0)
    started = time.monotonic()
    await wait_for_event(clock, asyncio.Event(), 10.0)  # ten clock seconds: a tenth of a real one
    assert 0.09 <= time.monotonic() - started < 1.0
    assert clock.monotonic() >= 10.0


def test_a_scaled_clocks_seconds_in_real_ones() -> None:
    """What spare time's patience and the timeouts count in: the service's seconds, made real."""
    assert real_seconds(ScaledClock(datetime(2026, 12, 1, tzinfo=UTC), speed=240.0), 1.2) == 0.005
    assert real_seconds(SYSTEM_CLOCK, 1.2) == 1.2


async def test_the_event_ends_the_wait() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, event.set)
    started = time.monotonic()
    await wait_for_event(SYSTEM_CLOCK, event, 30.0)
    assert event.is_set() and time.monotonic() - started < 5.0


class HandClock:
    """A clock whose sleep returns at once: the wait is over when it is, whatever the seconds."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def now(self) -> datetime:
        return datetime(2026, 12, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_any_other_clock_sleeps_on_its_own_terms() -> None:
    clock = HandClock()
    await asyncio.wait_for(wait_for_event(clock, asyncio.Event(), 3600.0), 5.0)
    assert clock.slept == [3600.0]
