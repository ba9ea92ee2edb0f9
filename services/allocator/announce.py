"""What the allocator publishes about each site and load it serves so that a client sees them from the start,
not from their first ``/set``: their settings, retained, and (with ``home_assistant``) their discovery configs.

Settings nobody has set are the configured defaults (``allocator.sites`` / ``allocator.loads``, else the
models' own). They go out retained once the site is served and its retained state settled, stamped
:data:`DEFAULTS_TS` (1970-01-01T00:00:00Z): that stamp says "the defaults, never set", so the allocator that
reads them back (after a restart, or a peer's) does not take them as set settings and the configuration in
force keeps applying — an edited default applies at the next start, while anything set over ``/set`` wins as
always. A load's settings are published once its adapter reported it or the config names it.

After a reconnect everything goes out again (a broker without persistence forgets retained messages). The
first time a site is decided on, every configured site and load is announced to Home Assistant and the
configs of the loads and sites that are gone are withdrawn (:class:`DiscoveryAnnouncer.sweep`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.models import LoadSettings, SiteSettings
from shared.mqtt import Runtime
from shared.topics import Topics

from .config import AllocatorConfig
from .discovery import DiscoveryAnnouncer
from .state import Registry, SiteState

#: The ``ts`` of published default settings: older than any setting, and never taken back as a setting.
DEFAULTS_TS = datetime(1970, 1, 1, tzinfo=UTC)


def is_defaults(settings: SiteSettings | LoadSettings) -> bool:
    """Whether these settings are published defaults (see :data:`DEFAULTS_TS`), not settings someone set."""
    return settings.ts == DEFAULTS_TS


class Announcements:
    def __init__(self, runtime: Runtime, topics: Topics, config: AllocatorConfig,
                 discovery: DiscoveryAnnouncer | None) -> None:
        self.runtime = runtime
        self.topics = topics
        self.config = config
        self.discovery = discovery
        #: The connection (``stats.connects``) the defaults below were published on.
        self._connection = 0
        self._published: set[tuple[str, str | None]] = set()
        self._swept = False

    async def served(self, site: SiteState, registry: Registry) -> None:
        """Before a decision on ``site``: publish its defaults not yet published on this connection, and on
        the first decision after start announce what is configured and withdraw what is gone."""
        if self._connection != self.runtime.stats.connects:
            self._connection, self._published = self.runtime.stats.connects, set()
        if site.settings_ts is None and (site.site, None) not in self._published:
            self._published.add((site.site, None))
            settings = site.settings.model_copy(update={"ts": DEFAULTS_TS})
            await self.runtime.publish(self.topics.site_settings(site.site), settings, retain=True)
        for load, entry in list(site.loads.items()):
            if entry.settings_ts is not None or (site.site, load) in self._published:
                continue
            configured = self.config.load_defaults(site.site, load)
            if entry.state is None and configured is None:
                continue  # known only from our own setpoint read back: not a load anyone has
            self._published.add((site.site, load))
            settings = (entry.settings or LoadSettings(site=site.site, load=load)).model_copy(
                update={"ts": DEFAULTS_TS})
            await self.runtime.publish(self.topics.load_settings(site.site, load), settings, retain=True)
        if self.discovery is not None and not self._swept:
            self._swept = True
            self._announce_configured(registry)
            withdrawn = self.discovery.sweep(self.config.serves)
            if withdrawn:
                self.runtime.log.info("withdrew %d Home Assistant configs of removed loads and sites", withdrawn)

    def _announce_configured(self, registry: Registry) -> None:
        assert self.discovery is not None
        for site_id, site in registry.sites.items():
            if site.served:
                self.discovery.site(site_id)
        for key in self.config.loads:
            site_id, load = key.split("/")
            if self.config.serves(site_id) and (site_id, load) not in self.discovery.loads:
                defaults = self.config.load_defaults(site_id, load)
                self.discovery.site(site_id)
                self.discovery.load(site_id, load, defaults.name if defaults is not None else "")
