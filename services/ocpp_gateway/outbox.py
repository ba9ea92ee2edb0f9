"""The way out to MQTT: one bounded queue for everything the gateway publishes.

OCPP handlers only enqueue, so a charger gets its answer without waiting for the broker. One worker
publishes in queue order (a few publishes in flight at once, handed to the MQTT client in order).

Retained state is coalesced: while a state topic (a connector's meter, a status, availability) still waits
in the queue, a newer value replaces the waiting one in place instead of queueing behind it. Under
overload MQTT therefore carries the latest state of every topic, at most one queue's length late, and the
queue holds at most one entry per state topic. Events and results (not retained) are never merged. When
the queue is full, ``put`` waits: chargers are read more slowly, and nothing grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.models import ErrorReport
from shared.mqtt import Runtime

log = logging.getLogger("ampmq.ocpp-gateway")

#: Publishes in flight at once. Each QoS 1 publish takes several event-loop turns; when thousands of
#: chargers keep the loop busy, 10 in flight (aiomqtt's warning threshold) publish ten times slower.
IN_FLIGHT = 100


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: BaseModel | str
    retain: bool
    qos: int = 1


class _StateSlot:
    """A queue entry standing for "the latest value of this retained topic"."""

    __slots__ = ("topic",)

    def __init__(self, topic: str) -> None:
        self.topic = topic


class Outbox:
    """A bounded, ordered publish queue in front of the service's MQTT runtime."""

    def __init__(self, runtime: Runtime, size: int = 10_000, in_flight: int = IN_FLIGHT) -> None:
        self.runtime = runtime
        self._queue: asyncio.Queue[Outgoing | _StateSlot] = asyncio.Queue(maxsize=size)
        self._latest: dict[str, Outgoing] = {}
        self._slots = asyncio.Semaphore(in_flight)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.dropped = 0
        self.reported = 0
        self.coalesced = 0

    async def put(self, topic: str, payload: BaseModel | str, *, retain: bool = False, qos: int = 1) -> None:
        """Queue a publish; waits while the queue is full (backpressure on the caller)."""
        item = Outgoing(topic, payload, retain, qos)
        if not retain:
            await self._queue.put(item)
        elif topic in self._latest:
            self._latest[topic] = item
            self.coalesced += 1
        else:
            await self._queue.put(_StateSlot(topic))
            self._latest[topic] = item

    def put_nowait(self, topic: str, payload: BaseModel | str, *, retain: bool = False) -> bool:
        """Queue a publish without waiting; a full queue drops it (counted and logged)."""
        item = Outgoing(topic, payload, retain)
        try:
            if not retain:
                self._queue.put_nowait(item)
            elif topic in self._latest:
                self._latest[topic] = item
                self.coalesced += 1
            else:
                self._queue.put_nowait(_StateSlot(topic))
                self._latest[topic] = item
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("outbox full: dropped publish to %s", topic)
            return False
        return True

    def report(self, site: str | None, error: str, message: str, payload: str | bytes = b"", topic: str = "") -> None:
        """Log an error and queue an :class:`ErrorReport` on the site's (or the service's) errors topic."""
        topics = self.runtime.topics
        errors_topic = topics.errors(site) if site else topics.service_errors(self.runtime.service)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        log.warning("%s: %s", error, message)
        self.reported += 1
        report = ErrorReport(service=self.runtime.service, topic=(topic or errors_topic)[:512], error=error[:64],
                             message=message[:1000], payload=text[:512])
        self.put_nowait(errors_topic, report)

    def allow_in_flight(self) -> None:
        """Tell the runtime's MQTT client that ``IN_FLIGHT`` pending publishes are intended (aiomqtt logs a
        warning per publish above its default of 10). Called after every connect."""
        client = getattr(self.runtime, "_client", None)  # the runtime exposes no setting for it
        if client is not None and hasattr(client, "pending_calls_threshold"):
            client.pending_calls_threshold = IN_FLIGHT + 10

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """Publish queued messages forever, in order, with a bounded number in flight."""
        loop = asyncio.get_running_loop()
        while True:
            entry = await self._queue.get()
            item = self._latest.pop(entry.topic) if isinstance(entry, _StateSlot) else entry
            await self._slots.acquire()
            task = loop.create_task(self._publish(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _publish(self, item: Outgoing) -> None:
        try:
            await self.runtime.publish(item.topic, item.payload, retain=item.retain, qos=item.qos)
        except Exception:  # the runtime reports broker trouble itself; never lose the worker
            log.exception("publish to %s failed", item.topic)
        finally:
            self._slots.release()
            self._queue.task_done()

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is published (or ``timeout`` passes)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
