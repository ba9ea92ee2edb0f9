"""Home Assistant MQTT discovery, published by the allocator: each site and load it serves appears in Home
Assistant as a device with its mode, priority, limits and setpoint, the first time the allocator sees it
and again whenever Home Assistant announces ``online`` on its status topic."""

from __future__ import annotations

import json

from shared.discovery import Discovery
from shared.mqtt import Runtime


class DiscoveryAnnouncer:
    def __init__(self, runtime: Runtime, discovery: Discovery) -> None:
        self.runtime = runtime
        self.discovery = discovery
        self.sites: set[str] = set()
        self.loads: dict[tuple[str, str], str] = {}

    async def site(self, site: str) -> None:
        if site not in self.sites:
            self.sites.add(site)
            await self._publish(self.discovery.site_entities(site))

    async def load(self, site: str, load: str, name: str = "") -> None:
        if self.loads.get((site, load)) != name:
            self.loads[(site, load)] = name
            await self._publish(self.discovery.load_entities(site, load, name))

    async def announce_all(self) -> None:
        """Home Assistant (re)started: send every config again."""
        for site in sorted(self.sites):
            await self._publish(self.discovery.site_entities(site))
        for (site, load), name in sorted(self.loads.items()):
            await self._publish(self.discovery.load_entities(site, load, name))

    async def _publish(self, entities: list[tuple[str, dict[str, object]]]) -> None:
        for topic, config in entities:
            await self.runtime.publish(topic, json.dumps(config), retain=True)
