"""When to decide: per site, on a change (coalesced to at most one decision per ``min_interval``) and at
least every ``refresh``, even when nothing arrives (so stale data is noticed and setpoints renewed).

Every site has its own small task; a change only sets the site's flag. The loops stay shut until
:meth:`DecisionLoop.open` (the service opens them once the retained state has settled after connecting).

A routine decision waits for spare time (:mod:`shared.spare_time`): the messages already waiting are handled
first, so a reading that shows an overload is never queued behind the routine decisions the readings before
it woke. An urgent decision (:meth:`DecisionLoop.urgent`) does not wait, and lets a waiting one through; a
cut (:meth:`DecisionLoop.cut`) is decided in the task that found the overload, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from shared.clock import Clock, real_seconds, wait_for_event
from shared.models import Timers
from shared.spare_time import SpareTime

log = logging.getLogger("ampmq.allocator.loop")

#: The longest a routine decision waits for spare time (s of the service's clock): on a machine that never
#: catches up it is late, never left out.
SPARE_PATIENCE = 0.5


class DecisionLoop:
    def __init__(
        self,
        clock: Clock,
        decide: Callable[[str], Awaitable[None]],
        timers: Callable[[str], Timers],
        spare_time: SpareTime | None = None,
    ) -> None:
        self._clock = clock
        self._spare_time = spare_time
        self._tickets: dict[str, asyncio.Future[None]] = {}
        self._decide = decide
        self._timers = timers
        self._changed: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._open = asyncio.Event()
        self._urgent: dict[str, asyncio.Event] = {}
        #: when each site's last decision began (s of the service's clock), whichever task made it
        self._last: dict[str, float] = {}
        self._deciding: set[str] = set()
        self.decisions = 0

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def open(self) -> None:
        """Let the sites' loops make decisions (idempotent)."""
        self._open.set()

    def urgent(self, site: str) -> None:
        """The site is over a limit: decide now, without waiting out ``min_interval`` (a cut for safety is
        immediate; only increases are paced)."""
        self._urgent.setdefault(site, asyncio.Event()).set()
        ticket = self._tickets.get(site)
        if ticket is not None:
            SpareTime.now(ticket)
        self.changed(site)

    async def cut(self, site: str) -> None:
        """The site is over a limit: decide in the calling task, now — a reading's handler, so the cut is on
        its way before the next message is read and without a turn of the event loop for the site's task to
        come round. While the loops are shut, or while the site's decision is under way, it is
        :meth:`urgent` instead. Anything that changed before it is in this decision; the site's loop goes on
        from it (its refresh, and ``min_interval`` before the next routine decision)."""
        if not self.is_open or site in self._deciding:
            self.urgent(site)
            return
        self._changed_event(site).clear()
        if (urgent := self._urgent.get(site)) is not None:
            urgent.clear()
        await self._decision(site)

    def changed(self, site: str) -> None:
        """Something the site's decision depends on changed: decide soon."""
        self._changed_event(site).set()

    def _changed_event(self, site: str) -> asyncio.Event:
        event = self._changed.get(site)
        if event is None:
            event = self._changed[site] = asyncio.Event()
            self._tasks[site] = asyncio.get_running_loop().create_task(self._run(site, event), name=f"decide-{site}")
        return event

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._changed.clear()

    async def _run(self, site: str, changed: asyncio.Event) -> None:
        await self._open.wait()
        clock = self._clock
        urgent = self._urgent.setdefault(site, asyncio.Event())
        while True:
            timers = self._timers(site)
            last = self._last.get(site)
            if last is not None:
                if not changed.is_set():
                    await wait_for_event(self._clock, changed, timers.refresh - (clock.monotonic() - last))
                gap = timers.min_interval - (clock.monotonic() - last)
                if gap > 0 and not urgent.is_set():
                    # coalesce: what arrives meanwhile goes into this decision
                    await wait_for_event(self._clock, urgent, gap)
            if self._spare_time is not None and not urgent.is_set():
                self._tickets[site] = ticket = self._spare_time.ticket(real_seconds(clock, SPARE_PATIENCE))
                try:
                    await ticket
                finally:
                    del self._tickets[site]
            if self._last.get(site) != last and not changed.is_set() and not urgent.is_set():
                continue  # a cut was decided meanwhile (cut()) and nothing changed since: from it, anew
            changed.clear()
            urgent.clear()
            await self._decision(site)

    async def _decision(self, site: str) -> None:
        self._deciding.add(site)
        self._last[site] = self._clock.monotonic()
        try:
            await self._decide(site)
            self.decisions += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one decision must not stop the site's loop
            log.exception("decision for site %s failed", site)
        finally:
            self._deciding.discard(site)
