"""Availability that tells the truth when a service runs as several instances (an active one and a standby, a
second ``ampmq run --only …``): the service is ``offline`` only when no instance of it is online.

Topics (beside the service's availability topic ``<root>/services/<service>/availability``):

* ``…/<service>/availability`` — retained ``online`` / ``offline``: what Home Assistant and the other services
  read. Every instance's Last Will is ``offline`` here (MQTT gives one Will per connection).
* ``…/<service>/instances/<instance>`` — retained ``online`` while that instance runs; cleared (an empty
  retained message) when it stops cleanly.
* ``…/<service>/roll-call`` — not retained: every running instance answers it by saying its entry again.

The rules each instance follows:

* On connecting it says ``online`` on both.
* On a clean stop it clears its own entry and, if other entries are there, calls the roll: when one of them
  answers within :data:`ROLL_CALL` seconds the service stays ``online`` (a stopped standby never overwrites a
  healthy instance); otherwise they were left by instances that died without a goodbye, are cleared, and the
  service goes ``offline``.
* An instance that sees ``offline`` for its service while it runs (another instance's Last Will) says
  ``online`` again at once — a false ``offline`` lasts one round trip — and calls the roll, clearing the
  entries nobody answers for.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

ONLINE = "online"
OFFLINE = "offline"
#: Seconds the running instances have to re-assert their entries after an ``offline``.
ROLL_CALL = 1.0
_NOT_ID = re.compile(r"[^a-z0-9-]+")

Publish = Callable[[str, str], Awaitable[object]]


def instance_id(identifier: str) -> str:
    """A topic id (``[a-z0-9-]``, at most 64) for an MQTT client identifier."""
    slug = _NOT_ID.sub("-", identifier.lower()).strip("-")
    return slug[-64:].lstrip("-") or "instance"


class InstanceAvailability:
    """One instance's part in its service's availability; ``publish(topic, payload)`` sends retained QoS 1,
    ``call(topic)`` sends the (not retained) roll call."""

    def __init__(self, service_topic: str, instance_topic: str, instances_filter: str, roll_call_topic: str,
                 publish: Publish, call: Publish, clock: Callable[[], float], log: logging.Logger) -> None:
        self.service_topic = service_topic
        self.instance_topic = instance_topic
        self.instance = instance_topic.rsplit("/", 1)[1]
        self.instances_filter = instances_filter
        self.roll_call_topic = roll_call_topic
        self._publish = publish
        self._call = call
        self._clock = clock
        self._log = log
        #: Other instances' entries seen ``online``, and when (our clock).
        self.peers: dict[str, float] = {}
        self.running = False
        self._tasks: set[asyncio.Task[None]] = set()

    def _entry(self, peer: str) -> str:
        return self.instances_filter[:-1] + peer

    async def announce(self) -> None:
        """Connected (again): this instance and its service are online."""
        self.running = True
        await self._publish(self.instance_topic, ONLINE)
        await self._publish(self.service_topic, ONLINE)

    async def goodbye(self, publish: Publish | None = None) -> bool:
        """A clean stop: clear this instance's entry; the service goes ``offline`` only if no other instance
        answers the roll call (returns whether it did). ``publish``: one that waits for the broker's
        acknowledgement, as a process about to end needs."""
        self.running = False
        say = publish or self._publish
        await say(self.instance_topic, "")
        if self.peers:
            called = await self._call_roll()
            while self._clock() < called + ROLL_CALL and not self._answered(called):
                await asyncio.sleep(0.02)
            if self._answered(called):
                self._log.info("stopping; another instance is online: the service stays online")
                return False
            await self._clear_silent(called)
        await say(self.service_topic, OFFLINE)
        return True

    def on_instance(self, topic: str, payload: bytes) -> None:
        """An instance entry, as retained or as it changes."""
        peer = topic.rsplit("/", 1)[1]
        if peer == self.instance:
            return
        if payload.strip() == ONLINE.encode():
            self.peers[peer] = self._clock()
        else:
            self.peers.pop(peer, None)

    async def on_roll_call(self) -> None:
        """Another instance calls the roll: say this one's entry again."""
        if self.running:
            await self._publish(self.instance_topic, ONLINE)

    async def on_service(self, payload: bytes, retained: bool) -> None:
        """The service's availability as published. A live ``offline`` while this instance runs is false: it
        is answered with ``online`` at once, and a roll call then clears the entries of instances that are
        gone. (A retained one is what this instance finds on connecting; its own ``online`` follows anyway.)"""
        if retained or payload.strip() != OFFLINE.encode() or not self.running:
            return
        self._log.warning("the service was said offline (another instance stopped or died) while this one "
                          "runs: online again")
        await self._publish(self.service_topic, ONLINE)
        await self._publish(self.instance_topic, ONLINE)
        called = await self._call_roll()
        task = asyncio.get_running_loop().create_task(self._clear_after_roll_call(called))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call_roll(self) -> float:
        called = self._clock()
        await self._call(self.roll_call_topic, self.instance)
        return called

    def _answered(self, called: float) -> bool:
        return any(seen >= called for seen in self.peers.values())

    async def _clear_after_roll_call(self, called: float) -> None:
        await asyncio.sleep(ROLL_CALL)
        await self._clear_silent(called)

    async def _clear_silent(self, called: float) -> None:
        """Clear the entries of the instances that did not answer the roll called at ``called``."""
        for peer, seen in list(self.peers.items()):
            if seen < called:
                self._log.info("instance %s did not answer the roll call: its entry is cleared", peer)
                self.peers.pop(peer, None)
                await self._publish(self._entry(peer), "")


__all__ = ["OFFLINE", "ONLINE", "ROLL_CALL", "InstanceAvailability", "instance_id"]
