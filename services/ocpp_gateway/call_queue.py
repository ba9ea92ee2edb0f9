"""One charger's turn to be asked: one outstanding CALL at a time, charging profiles first.

OCPP-J allows a single outstanding CALL per direction (OCPP-J 1.6, "Synchronicity", and the same rule in
OCPP 2.0.1 part 4: a sender does not send a CALL until every CALL it sent before has been answered or has
timed out). So a command that the
charger never answers holds the next one back until its timeout, whatever that next one is. Here the
waiting commands are served in two lines: **urgent** ones (the charging profiles that carry a cut:
SetChargingProfile, ClearChargingProfile) before every other command, each line in arrival order. A cut
therefore waits at most for the one CALL already in flight (bounded by its timeout: ``call_timeout`` unless
the command asks otherwise, never above ``max_call_timeout``) and for the urgent CALLs queued before it —
never for a queue of DataTransfers or configuration reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

#: The commands that may cut a charger's current: they overtake every other waiting command.
URGENT_ACTIONS = frozenset({"SetChargingProfile", "ClearChargingProfile"})


class CallQueue:
    """An asyncio lock for one charger's outgoing CALLs whose waiters are served urgent-first."""

    def __init__(self) -> None:
        self._busy = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._other: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Callers waiting for their turn (not counting the CALL in flight)."""
        return sum(1 for f in (*self._urgent, *self._other) if not f.done())

    @contextlib.asynccontextmanager
    async def turn(self, urgent: bool) -> AsyncIterator[None]:
        """Hold the charger's one CALL slot for the block; waits behind the CALL in flight and, unless
        ``urgent``, behind every urgent caller too. A caller cancelled while waiting (its timeout) leaves
        the line; one cancelled just as its turn came passes the turn on."""
        if self._busy:
            line = self._urgent if urgent else self._other
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            line.append(granted)
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._hand_on()  # the turn came with the cancellation: give it to the next one
                else:
                    with contextlib.suppress(ValueError):
                        line.remove(granted)
                raise
        else:
            self._busy = True
        try:
            yield
        finally:
            self._hand_on()

    def _hand_on(self) -> None:
        for line in (self._urgent, self._other):
            while line:
                granted = line.popleft()
                if not granted.done():
                    granted.set_result(None)  # the slot passes to it: still busy
                    return
        self._busy = False
