"""Spare time: work that waits until the inbox is empty goes one piece per turn of the event loop, in order,
never longer than its patience; a ticket can be let through early. On the real event loop, no clock faked."""

from __future__ import annotations

import asyncio
import logging

from shared.spare_time import SpareTime, SpareWork


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_tickets_wait_while_messages_do_and_go_one_per_turn_once_the_inbox_is_empty() -> None:
    waiting = [3]  # messages in the inbox
    spare = SpareTime(lambda: waiting[0] > 0)
    tickets = [spare.ticket(patience=10.0) for _ in range(3)]
    await turns(5)
    assert not any(t.done() for t in tickets)
    waiting[0] = 0
    spare.idle()
    await turns(2)
    assert [t.done() for t in tickets] == [True, False, False]
    waiting[0] = 1  # a message came in after the first one went: the others wait again
    await turns(5)
    assert [t.done() for t in tickets] == [True, False, False]
    waiting[0] = 0
    spare.idle()
    await asyncio.wait_for(asyncio.gather(*tickets), 1.0)
    assert spare.overdue == 0


async def test_a_ticket_goes_when_its_patience_runs_out_however_busy() -> None:
    spare = SpareTime(lambda: True)
    ticket = spare.ticket(patience=0.05)
    await asyncio.sleep(0.02)
    assert not ticket.done()
    await asyncio.wait_for(ticket, 1.0)
    assert spare.overdue == 1


async def test_a_short_patience_is_kept_behind_a_long_one() -> None:
    """The allocator's routine decisions (0.5 s) wait behind its calibrations (5 s): each keeps its own."""
    spare = SpareTime(lambda: True)
    long, short = spare.ticket(patience=10.0), spare.ticket(patience=0.05)
    await asyncio.wait_for(short, 1.0)
    assert not long.done() and spare.overdue == 1
    long.cancel()


async def test_a_ticket_let_through_early_goes_at_once_and_the_next_keeps_its_place() -> None:
    spare = SpareTime(lambda: True)
    first, second = spare.ticket(patience=10.0), spare.ticket(patience=0.05)
    SpareTime.now(second)
    assert second.done() and not first.done()
    first.cancel()  # a cancelled one is skipped
    third = spare.ticket(patience=0.05)
    await asyncio.wait_for(third, 1.0)


async def test_spare_work_runs_in_order_and_drops_the_oldest_beyond_its_limit() -> None:
    busy = [True]
    spare = SpareTime(lambda: busy[0])
    work = SpareWork(spare, patience=10.0, limit=3, log=logging.getLogger("test"))
    done: list[int] = []

    def piece(n: int):  # type: ignore[no-untyped-def]
        async def run() -> None:
            done.append(n)
        return run

    runner = asyncio.ensure_future(work.run())
    try:
        for n in range(5):
            work.put(piece(n))
        await turns(5)
        assert done == [] and work.dropped == 2 and len(work) == 3  # 0 and 1 dropped; the rest wait
        busy[0] = False
        spare.idle()
        for _ in range(100):
            await asyncio.sleep(0)
            if len(done) == 3:
                break
        assert done == [2, 3, 4]
    finally:
        runner.cancel()
