"""Home Assistant MQTT discovery, published by the allocator: each site and load it serves appears in Home
Assistant as a device with its mode, priority, limits, setpoint, power and energy, the first time the
allocator sees it and again whenever Home Assistant announces ``online`` on its status topic.

Configs that no longer describe anything are withdrawn (an empty retained payload on the config topic, which
makes Home Assistant delete the entity): every config of a load its adapter removed, the configs a load no
longer has (a load first announced without its kind, then seen to be a charger, gains entities; one of
another kind loses them), and — once the retained state settled after start — every retained ampmq config
of a site this instance serves that it did not announce itself (a load or site removed while it was down).

Announcements go out from a task of their own, never from a message handler: a thousand loads seen at
start are several thousand retained configs, and publishing them from the handler that saw each load held
every message behind them — an overload reading included — for seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from shared.discovery import Discovery, Entities
from shared.models import LoadKind
from shared.mqtt import Runtime
from shared.payload import PayloadError, parse_json
from shared.topics import TopicError

#: A config to publish (``dict``) or withdraw (``None``), by topic.
Outgoing = list[tuple[str, dict[str, object] | None]]


class DiscoveryAnnouncer:
    def __init__(self, runtime: Runtime, discovery: Discovery) -> None:
        self.runtime = runtime
        self.discovery = discovery
        self.sites: set[str] = set()
        #: (site, load) -> (name, kind) it was announced with.
        self.loads: dict[tuple[str, str], tuple[str, LoadKind | None]] = {}
        #: Config topic -> site, of every config announced.
        self.announced: dict[str, str] = {}
        #: Config topic -> site, of the retained ampmq configs found on the broker.
        self.found: dict[str, str] = {}
        self._waiting: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    def site(self, site: str) -> None:
        if site not in self.sites:
            self.sites.add(site)
            self._announce(site, self.discovery.site_entities(site))

    def load(self, site: str, load: str, name: str = "", kind: LoadKind | None = None) -> None:
        """Announce a load, or announce it again when its name or kind changed."""
        held = self.loads.get((site, load))
        kind = kind if kind is not None else (held[1] if held is not None else None)
        if held != (name, kind):
            before = self._topics_of(site, load, held)
            self.loads[(site, load)] = (name, kind)
            entities = self.discovery.load_entities(site, load, name, kind)
            self._withdraw(before - {topic for topic, _ in entities})
            self._announce(site, entities)

    def remove_load(self, site: str, load: str) -> None:
        """The load is gone: withdraw all its configs."""
        held = self.loads.pop((site, load), None)
        if held is not None:
            self._withdraw(self._topics_of(site, load, held))

    def found_config(self, topic: str, payload: bytes) -> None:
        """A retained discovery config read back from the broker: remember it when it is ampmq's."""
        if not payload or not self.discovery.is_ours(topic):
            return
        try:
            config = parse_json(payload)
            state_topic = config.get("state_topic") if isinstance(config, dict) else None
            site = self.runtime.topics.parse(state_topic).site if isinstance(state_topic, str) else None
        except (PayloadError, TopicError):
            return
        if site is not None:
            self.found[topic] = site

    def sweep(self, serves: Callable[[str], bool]) -> int:
        """Withdraw the retained configs of sites ``serves`` that this instance did not announce: the loads
        and sites removed while it was not running. Returns how many were withdrawn."""
        stale = {topic for topic, site in self.found.items() if serves(site) and topic not in self.announced}
        self.found.clear()
        self._withdraw(stale)
        return len(stale)

    def announce_all(self) -> None:
        """Home Assistant (re)started: send every config again."""
        for site in sorted(self.sites):
            self._announce(site, self.discovery.site_entities(site))
        for (site, load), (name, kind) in sorted(self.loads.items()):
            self._announce(site, self.discovery.load_entities(site, load, name, kind))

    def _topics_of(self, site: str, load: str, held: tuple[str, LoadKind | None] | None) -> set[str]:
        if held is None:
            return set()
        return {topic for topic, _ in self.discovery.load_entities(site, load, held[0], held[1])}

    def _announce(self, site: str, entities: Entities) -> None:
        for topic, _ in entities:
            self.announced[topic] = site
        self._queue(list(entities))

    def _withdraw(self, topics: set[str]) -> None:
        for topic in topics:
            self.announced.pop(topic, None)
        if topics:
            self._queue([(topic, None) for topic in sorted(topics)])

    def _queue(self, outgoing: Outgoing) -> None:
        self._waiting.put_nowait(outgoing)
        if self._sender is None or self._sender.done():
            self._sender = self.runtime.spawn(self._send())

    async def _send(self) -> None:
        while not self._waiting.empty():
            for topic, config in self._waiting.get_nowait():
                await self.runtime.publish(topic, None if config is None else json.dumps(config), retain=True)
