"""Home Assistant MQTT discovery, published by the allocator: each site and load it serves appears in Home
Assistant as a device with its mode, priority, limits and setpoint, the first time the allocator sees it
and again whenever Home Assistant announces ``online`` on its status topic.

Announcements go out from a task of their own, never from a message handler: a thousand loads seen at
start are several thousand retained configs, and publishing them from the handler that saw each load held
every message behind them — an overload reading included — for seconds.
"""

from __future__ import annotations

import asyncio
import json

from shared.discovery import Discovery
from shared.mqtt import Runtime

Entities = list[tuple[str, dict[str, object]]]


class DiscoveryAnnouncer:
    def __init__(self, runtime: Runtime, discovery: Discovery) -> None:
        self.runtime = runtime
        self.discovery = discovery
        self.sites: set[str] = set()
        self.loads: dict[tuple[str, str], str] = {}
        self._waiting: asyncio.Queue[Entities] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    def site(self, site: str) -> None:
        if site not in self.sites:
            self.sites.add(site)
            self._announce(self.discovery.site_entities(site))

    def load(self, site: str, load: str, name: str = "") -> None:
        if self.loads.get((site, load)) != name:
            self.loads[(site, load)] = name
            self._announce(self.discovery.load_entities(site, load, name))

    def announce_all(self) -> None:
        """Home Assistant (re)started: send every config again."""
        for site in sorted(self.sites):
            self._announce(self.discovery.site_entities(site))
        for (site, load), name in sorted(self.loads.items()):
            self._announce(self.discovery.load_entities(site, load, name))

    def _announce(self, entities: Entities) -> None:
        self._waiting.put_nowait(entities)
        if self._sender is None or self._sender.done():
            self._sender = self.runtime.spawn(self._send())

    async def _send(self) -> None:
        while not self._waiting.empty():
            for topic, config in self._waiting.get_nowait():
                await self.runtime.publish(topic, json.dumps(config), retain=True)
