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

A message may be put *first* (a command whose delay is the reaction: the allocator's setpoint to a load
adapter): it is handled before every message of the ordinary lane, in order among those put first. A topic
always goes into the same lane, so what is said above holds within each lane.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Message(Protocol):
    @property
    def topic(self) -> str: ...


T = TypeVar("T", bound=Message)


class Inbox(Generic[T]):
    """A FIFO of messages in which a state message replaces a waiting one for its topic."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        #: Per lane (first, ordinary), keys in arrival order, each with the slot it holds: a state that moved
        #: back leaves its old slot behind, skipped when its turn comes.
        self._lanes: tuple[deque[tuple[object, int]], deque[tuple[object, int]]] = (deque(), deque())
        #: key -> (message, its slot, how many events had come into its lane when it took that slot)
        self._waiting: dict[object, tuple[T, int, int]] = {}
        self._events = 0  # waiting messages that no newer one can replace
        self._events_in = [0, 0]  # every event ever queued, per lane
        self._serial = itertools.count()
        self._ready = asyncio.Event()
        #: How many state messages a newer one replaced, and how many events were refused for want of room.
        self.replaced = 0
        self.refused = 0
        #: Called each time the inbox has been emptied and its reader waits (see shared/spare_time.py).
        self.emptied: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, message: T, *, state: bool, first: bool = False) -> bool:
        """Queue ``message``; ``state`` says a newer message on its topic supersedes it, ``first`` that it goes
        before the ordinary lane. False when refused."""
        lane = 0 if first else 1
        order = self._lanes[lane]
        events_in = self._events_in[lane]
        if state:
            waiting = self._waiting.get(message.topic)
            if waiting is not None:
                self.replaced += 1
                _, slot, seen = waiting
                if seen == events_in:  # nothing came after it that it may not overtake: its place
                    self._waiting[message.topic] = (message, slot, seen)
                    return True
                slot += 1  # after the events that came since
                self._waiting[message.topic] = (message, slot, events_in)
                order.append((message.topic, slot))
                return True
            key: object = message.topic
        else:
            if self._events >= self.limit:
                self.refused += 1
                return False
            key = next(self._serial)
            self._events += 1
            events_in = self._events_in[lane] = events_in + 1
        self._waiting[key] = (message, 0, events_in)
        order.append((key, 0))
        self._ready.set()
        return True

    def first_waiting(self) -> bool:
        """Whether a message put first waits (the slots a state left behind at the lane's head are dropped)."""
        first = self._lanes[0]
        while first:
            if self._live(*first[0]) is not None:
                return True
            first.popleft()
        return False

    def _live(self, key: object, slot: int) -> tuple[T, int, int] | None:
        """What waits under ``key`` if ``slot`` is its place; None for a slot a state left behind."""
        waiting = self._waiting.get(key)
        return waiting if waiting is not None and waiting[1] == slot else None

    async def get(self) -> T:
        """The oldest waiting message (with the newest content for its topic)."""
        first, ordinary = self._lanes
        while True:
            while not first and not ordinary:
                self._ready.clear()
                if self.emptied is not None:
                    self.emptied()
                await self._ready.wait()
            key, slot = (first or ordinary).popleft()
            waiting = self._live(key, slot)
            if waiting is None:
                continue  # a slot a state left behind when it moved back
            del self._waiting[key]
            if not isinstance(key, str):
                self._events -= 1
            return waiting[0]


__all__ = ["Inbox", "Message"]
