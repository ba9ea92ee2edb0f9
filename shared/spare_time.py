"""Work that waits until the inbox is empty: what a service must do, but not before what it has been told.

A service handles its inbox first. Work that no message is waiting on — the allocator's routine decisions
and its phase calibration — asks for *spare time* and runs when the inbox is empty, one piece per turn of
the event loop, so a message that arrives meanwhile (an overload reading) waits for at most one piece, not
for every decision the readings before it woke. Traced at 1 000 chargers (``bench/hops.py``), the slowest
reactions were readings that waited in the allocator's inbox behind tens of milliseconds of such work.

A piece never waits longer than its ``patience``: on a machine that never catches up, routine work is late,
never left undone. A waiting ticket can be let through early (:meth:`SpareTime.now`): a site found over
its limit decides at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable


class SpareTime:
    """Tickets for spare time, handed out in order, one per turn of the event loop.

    Tickets of the same patience wait in one queue (their deadlines in arrival order), so the earliest
    deadline is always at the head of one of the few queues: a decision's short patience is kept even behind
    a calibration's long one."""

    def __init__(self, busy: Callable[[], bool]) -> None:
        #: Whether messages wait (then no ticket goes, unless its patience ran out).
        self._busy = busy
        #: patience -> (arrival, ticket, deadline) in arrival order
        self._queues: dict[float, deque[tuple[int, asyncio.Future[None], float]]] = {}
        self._arrivals = itertools.count()
        self._release: asyncio.TimerHandle | None = None
        #: Tickets let through because their patience ran out while messages waited.
        self.overdue = 0

    def ticket(self, patience: float) -> asyncio.Future[None]:
        """A future that completes when the inbox is empty (or after ``patience`` seconds at the latest)."""
        loop = asyncio.get_running_loop()
        ticket: asyncio.Future[None] = loop.create_future()
        queue = self._queues.get(patience)
        if queue is None:
            queue = self._queues[patience] = deque()
        queue.append((next(self._arrivals), ticket, loop.time() + patience))
        self._schedule(loop, 0.0)
        return ticket

    @staticmethod
    def now(ticket: asyncio.Future[None]) -> None:
        """Let ``ticket`` through at once (work that became urgent while it waited)."""
        if not ticket.done():
            ticket.set_result(None)

    def idle(self) -> None:
        """The inbox has emptied: the next ticket may go."""
        if any(self._queues.values()):
            self._schedule(asyncio.get_running_loop(), 0.0)

    def _schedule(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if self._release is not None:
            if delay > 0.0 or self._release.when() <= loop.time():
                return
            self._release.cancel()  # a timed release is brought forward
        if delay > 0.0:
            self._release = loop.call_later(delay, self._let_one_through)
        else:
            self._release = loop.call_at(loop.time(), self._let_one_through)

    def _heads(self) -> list[deque[tuple[int, asyncio.Future[None], float]]]:
        """The queues with a ticket still waiting, each with that ticket at its head."""
        heads = []
        for queue in self._queues.values():
            while queue and queue[0][1].done():  # let through early, or cancelled
                queue.popleft()
            if queue:
                heads.append(queue)
        return heads

    def _let_one_through(self) -> None:
        self._release = None
        heads = self._heads()
        if not heads:
            return
        loop = asyncio.get_running_loop()
        if self._busy():
            now = loop.time()
            overdue = [q for q in heads if q[0][2] <= now]
            if not overdue:
                # the earliest patience runs out then (or the inbox empties sooner: idle)
                self._schedule(loop, min(q[0][2] for q in heads) - now)
                return
            heads = overdue
            self.overdue += 1
        queue = min(heads, key=lambda q: q[0][0])  # the oldest of them
        _, ticket, _ = queue.popleft()
        ticket.set_result(None)
        if len(heads) > 1 or queue:
            # the next one on a later turn: after the one let through has run, and the socket was read
            self._schedule(loop, 0.0)


class SpareWork:
    """Work done in spare time, in the order it was put, by one task (:meth:`run`). When more than ``limit``
    pieces wait, the oldest is dropped and counted: at most that much falls behind."""

    def __init__(self, spare_time: SpareTime, patience: float, limit: int, log: logging.Logger) -> None:
        self._spare_time = spare_time
        self._patience = patience
        self._limit = limit
        self._log = log
        self._pieces: deque[Callable[[], Awaitable[None]]] = deque()
        self._waiting = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pieces)

    def put(self, piece: Callable[[], Awaitable[None]]) -> None:
        if len(self._pieces) >= self._limit:
            self._pieces.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                self._log.warning("spare-time work behind by %d pieces: %d oldest dropped", self._limit,
                                  self.dropped)
        self._pieces.append(piece)
        self._waiting.set()

    async def run(self) -> None:
        while True:
            while not self._pieces:
                self._waiting.clear()
                await self._waiting.wait()
            await self._spare_time.ticket(self._patience)
            piece = self._pieces.popleft()
            try:
                await piece()
            except asyncio.CancelledError:
                raise
            except Exception:  # one piece's failure must not stop the rest
                self._log.exception("spare-time work failed")


__all__ = ["SpareTime", "SpareWork"]
