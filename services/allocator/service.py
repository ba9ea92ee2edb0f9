"""The allocator service (skeleton until the allocator-service issue lands): validates its inputs."""

from __future__ import annotations

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig
from shared.models import LoadSettingsSet, LoadState, SiteMeasurement, SiteSettingsSet
from shared.mqtt import Incoming, Runtime
from shared.topics import Leaf, Topics


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    topics = Topics(config.root)
    runtime = Runtime("allocator", config.broker_url(), topics)

    @runtime.route(topics.measurement_filter(), SiteMeasurement)
    async def on_measurement(msg: Incoming[SiteMeasurement]) -> None:
        runtime.log.debug("measurement for %s", msg.payload.site)

    @runtime.route(topics.load_filter(Leaf.STATE), LoadState)
    async def on_load_state(msg: Incoming[LoadState]) -> None:
        runtime.log.debug("load state %s", msg.payload.load)

    @runtime.route(topics.site_settings_set_filter(), SiteSettingsSet)
    async def on_site_settings_set(msg: Incoming[SiteSettingsSet]) -> None:
        runtime.log.debug("site settings %s", msg.payload)

    @runtime.route(topics.load_filter(Leaf.SETTINGS_SET), LoadSettingsSet)
    async def on_load_settings_set(msg: Incoming[LoadSettingsSet]) -> None:
        runtime.log.debug("load settings %s", msg.payload)

    await runtime.run()
