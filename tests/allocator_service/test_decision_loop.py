"""When the decision loop decides, against spare time on the real event loop (no clock faked): a routine
decision waits while messages wait in the inbox, never longer than its patience; a site over its limit
decides at once, and lets its own waiting decision through."""

from __future__ import annotations

import asyncio

from services.allocator.loop import SPARE_PATIENCE, DecisionLoop
from shared.clock import SYSTEM_CLOCK
from shared.models import Timers
from shared.spare_time import SpareTime


async def until(check: object, timeout: float = 2.0) -> None:
    async def poll() -> None:
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)


async def test_routine_decisions_wait_for_spare_time_and_a_cut_does_not() -> None:
    waiting_messages = [True]
    spare = SpareTime(lambda: waiting_messages[0])
    decided: list[str] = []

    async def decide(site: str) -> None:
        decided.append(site)

    timers = Timers(min_interval=0.0, refresh=60.0)
    loop = DecisionLoop(SYSTEM_CLOCK, decide, lambda _site: timers, spare)
    loop.open()
    try:
        loop.changed("quiet")
        loop.changed("routine")
        await asyncio.sleep(0.05)
        assert decided == []  # the inbox is busy: routine decisions wait
        loop.urgent("over")
        await until(lambda: decided == ["over"])  # over its limit: at once, busy or not
        loop.urgent("routine")  # its routine decision was waiting: it goes now
        await until(lambda: decided == ["over", "routine"])
        waiting_messages[0] = False
        spare.idle()  # the inbox emptied: the rest follow
        await until(lambda: decided == ["over", "routine", "quiet"])
    finally:
        await loop.close()


async def test_a_routine_decision_is_late_at_most_its_patience_on_a_machine_that_never_catches_up() -> None:
    spare = SpareTime(lambda: True)
    decided: list[float] = []

    async def decide(site: str) -> None:
        decided.append(asyncio.get_running_loop().time())

    timers = Timers(min_interval=0.0, refresh=60.0)
    loop = DecisionLoop(SYSTEM_CLOCK, decide, lambda _site: timers, spare)
    loop.open()
    try:
        asked = asyncio.get_running_loop().time()
        loop.changed("busy")
        await until(lambda: decided, timeout=SPARE_PATIENCE + 2.0)
        assert decided[0] - asked >= SPARE_PATIENCE * 0.9 and spare.overdue == 1
    finally:
        await loop.close()
