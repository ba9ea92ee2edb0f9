"""The messages a service has received and not yet handled, where a newer state replaces an older one.

A service reads the broker's stream at once into its inbox and handles it in order from there. When the
handlers fall behind (a thousand meters a second on two cores), a message for a *state* topic — a meter
reading, a load's state, a setpoint: topics where only the latest value means anything — replaces the one
still waiting for the same topic, in that one's place in the queue; unless a command or event came in after
that one: then the newer state goes after it, never ahead of what was published before it (a charger's
transaction start, then its first register reading: the reading handled first found no session). Nothing a
handler would act on is lost: the latest state of every topic is handled, and every command and event (never
replaced) in order. Only when more than ``limit`` commands and events wait is the newest refused, counted,
and logged.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Generic, Protocol, TypeVar


class Message(Protocol):
    @property
    def topic(self) -> str: ...


T = TypeVar("T", bound=Message)


class Inbox(Generic[T]):
    """A FIFO of messages in which a state message replaces a waiting one for its topic."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        #: Keys in arrival order, each with the slot it holds: a state that moved back leaves its old slot
        #: behind, skipped when its turn comes.
        self._order: deque[tuple[object, int]] = deque()
        #: key -> (message, its slot, how many events had come when it took that slot)
        self._waiting: dict[object, tuple[T, int, int]] = {}
        self._events = 0  # waiting messages that no newer one can replace
        self._events_in = 0  # every event ever queued
        self._serial = itertools.count()
        self._ready = asyncio.Event()
        #: How many state messages a newer one replaced, and how many events were refused for want of room.
        self.replaced = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, message: T, *, state: bool) -> bool:
        """Queue ``message``; ``state`` says a newer message on its topic supersedes it. False when refused."""
        if state:
            waiting = self._waiting.get(message.topic)
            if waiting is not None:
                self.replaced += 1
                _, slot, seen = waiting
                if seen == self._events_in:  # nothing came after it that it may not overtake: its place
                    self._waiting[message.topic] = (message, slot, seen)
                    return True
                slot += 1  # after the events that came since
                self._waiting[message.topic] = (message, slot, self._events_in)
                self._order.append((message.topic, slot))
                return True
            key: object = message.topic
        else:
            if self._events >= self.limit:
                self.refused += 1
                return False
            key = next(self._serial)
            self._events += 1
            self._events_in += 1
        self._waiting[key] = (message, 0, self._events_in)
        self._order.append((key, 0))
        self._ready.set()
        return True

    async def get(self) -> T:
        """The oldest waiting message (with the newest content for its topic)."""
        while True:
            while not self._order:
                self._ready.clear()
                await self._ready.wait()
            key, slot = self._order.popleft()
            waiting = self._waiting.get(key)
            if waiting is None or waiting[1] != slot:
                continue  # a slot a state left behind when it moved back
            del self._waiting[key]
            if not isinstance(key, str):
                self._events -= 1
            return waiting[0]


__all__ = ["Inbox", "Message"]
