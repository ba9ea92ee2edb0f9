"""What a previous run of the gateway left on the broker, read back after a (re)start.

The gateway keeps its sessions in memory; the broker keeps their retained state. A gateway that was
killed (no clean stop) or restarted left two things that would be wrong or missing:

* **availability**: every charger it served is still retained ``online``. On every MQTT connect the
  gateway publishes ``offline`` for each *configured* charger that has no socket now, and it reads the
  retained charger availability of its root (of its ``serve_only`` sites, when partitioned: the others are
  another instance's): a retained ``online`` for a charger without a socket (one admitted as pending, or
  removed from the config since) is answered with ``offline`` too. Only retained copies are judged — they
  are what was there before; the live echo of the gateway's own publications is always right.
* **the transaction → connector map**: a 1.6 StopTransaction names no connector, nor does a 2.0.1
  TransactionEvent without ``evse``; the connector is the one the transaction started on. The gateway
  reads its own retained ``connector/<n>/transaction`` topics back: a transaction ``started`` or
  ``updated`` there and not ``ended`` is remembered on its connector, so a charger that ends, after the
  restart, a session it began before it lands on the right connector (not on connector 0).

The retained copies arrive right after the gateway subscribes, which is before the chargers have
reconnected to the new process (they notice the lost socket first, then back off) — the ordinary case. A
StopTransaction that overtakes them lands on connector 0 and is reported as before.
"""

from __future__ import annotations

import logging

from shared.models import TransactionState
from shared.mqtt import OFFLINE, ONLINE, Incoming, RawIncoming, Runtime
from shared.topics import Leaf, TopicError, Topics, slugify

from .config import GatewayConfig
from .outbox import Outbox
from .registry import Registry

log = logging.getLogger("ampmq.ocpp-gateway.recall")


class Recall:
    """Reads the gateway's retained charger state back and puts availability right."""

    def __init__(self, config: GatewayConfig, runtime: Runtime, registry: Registry, outbox: Outbox) -> None:
        self.config = config
        self.topics: Topics = runtime.topics
        self.registry = registry
        self.outbox = outbox
        runtime.raw_route(self.topics.charger_filter(Leaf.AVAILABILITY))(self._on_availability)
        runtime.route(self.topics.charger_filter(f"{Leaf.CONNECTOR}/+/{Leaf.TRANSACTION}"),
                      TransactionState)(self._on_transaction)
        self._configured = set(self.configured())

    def configured(self) -> list[tuple[str, str]]:
        """(site, charger topic id) of every configured charger."""
        return [(self.config.site_of(cp_id), slugify(cp_id)) for cp_id in self.config.chargers]

    def _ours(self, site: str, charger: str) -> bool:
        """Whether this gateway serves ``charger`` on ``site``: configured there, or (with unknown chargers let
        in) on the default site."""
        if (site, charger) in self._configured:
            return True
        return bool(self.config.allow_unknown) and site == self.config.default_site

    async def announce_absent(self) -> None:
        """Retained ``offline`` for every configured charger that has no socket now (after each connect)."""
        for site, charger in self.configured():
            session = self.registry.get(charger)
            if session is None or session.site != site:
                await self.outbox.put(self.topics.charger_availability(site, charger), OFFLINE, retain=True)

    async def _on_availability(self, msg: RawIncoming) -> None:
        if not msg.retain or msg.payload.strip() != ONLINE.encode():
            return
        try:
            ref = self.topics.parse(msg.topic)
        except TopicError:
            return
        if ref.site is None or ref.id is None:
            return
        session = self.registry.get(ref.id)
        if session is not None and session.site == ref.site:
            return  # it is connected to us: online is right
        log.info("charger %s/%s was left online by an earlier run: offline", ref.site, ref.id)
        await self.outbox.put(msg.topic, OFFLINE, retain=True)

    async def _on_transaction(self, msg: Incoming[TransactionState]) -> None:
        if not msg.retain:
            return  # the echo of our own publication: memory already has it
        state = msg.payload
        if not self._ours(state.site, state.charger):
            return  # another gateway's charger (or another site's with the same id): not ours to remember
        memory = self.registry.memory(state.charger)
        if state.state == "ended":
            if memory.transactions.get(state.transaction_id) == state.connector:
                del memory.transactions[state.transaction_id]
        elif state.connector > 0 and state.transaction_id not in memory.transactions:
            memory.remember_transaction(state.transaction_id, state.connector)
