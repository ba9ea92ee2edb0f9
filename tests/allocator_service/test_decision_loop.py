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


async def test_a_cut_is_decided_in_the_calling_task_and_the_sites_loop_goes_on_from_it() -> None:
    spare = SpareTime(lambda: True)  # messages always waiting: only a cut goes at once
    decided: list[tuple[str, asyncio.Task[object] | None]] = []

    async def decide(site: str) -> None:
        decided.append((site, asyncio.current_task()))

    timers = Timers(min_interval=0.3, refresh=60.0)
    loop = DecisionLoop(SYSTEM_CLOCK, decide, lambda _site: timers, spare)
    loop.open()
    try:
        loop.changed("over")  # a routine change was waiting for spare time when the overload came
        await asyncio.sleep(0.02)
        await loop.cut("over")
        assert decided == [("over", asyncio.current_task())]  # done before cut() returned, by this task
        # the routine decision that was waiting (at most its patience) is not made again on top of the cut
        await asyncio.sleep(SPARE_PATIENCE + 0.2)
        assert len(decided) == 1
        # a change after a cut waits out min_interval from the cut (then for its patience: messages wait)
        await loop.cut("over")
        cut_at = asyncio.get_running_loop().time()
        loop.changed("over")
        await until(lambda: len(decided) == 3, timeout=SPARE_PATIENCE + 2.0)
        assert asyncio.get_running_loop().time() - cut_at >= 0.3
        assert decided[2][1] is not asyncio.current_task()  # the site's own task made it
    finally:
        await loop.close()


async def test_a_cut_while_the_loops_are_shut_or_the_site_is_deciding_is_made_by_the_sites_loop() -> None:
    release = asyncio.Event()
    decided: list[str] = []

    async def decide(site: str) -> None:
        decided.append(site)
        if len(decided) == 1:
            await release.wait()  # the first decision is under way (it publishes, say) when the next cut comes

    timers = Timers(min_interval=5.0, refresh=60.0)
    loop = DecisionLoop(SYSTEM_CLOCK, decide, lambda _site: timers)
    try:
        await loop.cut("over")  # shut: noted, not decided
        assert decided == []
        loop.open()
        await until(lambda: decided == ["over"])
        await loop.cut("over")  # the site's decision is under way: decided right after it, not within min_interval
        assert decided == ["over"]
        release.set()
        await until(lambda: decided == ["over", "over"], timeout=1.0)
    finally:
        await loop.close()
