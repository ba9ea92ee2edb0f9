"""The meter bridge: drivers in, one trustworthy :class:`SiteMeasurement` per site out.

Per source a :class:`SourceChannel` takes what the driver read, checks it (:mod:`.trust`), normalizes
it (:mod:`.normalizer`) and applies it to the site's state (:mod:`.site`); the site's
:class:`~.publisher.CoalescingPublisher` then publishes the measurement, retained. A ticker per site
drops stale fields (and republishes) and marks silent sources offline.
"""

from __future__ import annotations

import logging

from shared.clock import Clock
from shared.models import ErrorReport
from shared.mqtt import OFFLINE, ONLINE, RawIncoming, Runtime

from .config import MeterBridgeConfig, SiteConfig, SourceBase
from .drivers import DeviceDataError, Driver, MqttDriver, TaskDriver, build_driver
from .metrics import MeterBridgeCollector
from .normalizer import normalize
from .publisher import CoalescingPublisher
from .sample import Sample
from .site import SiteState
from .supervisor import Supervisor
from .trust import Freshness, Implausible, PlausibilityGate

log = logging.getLogger("ampmq.meter-bridge")

#: The measurement is retained state that the next reading supersedes (within a second or so), so it
#: goes out at QoS 0: waiting for a PUBACK per measurement costs more than it protects. On Mosquitto's
#: default (``set_tcp_nodelay false``) a PUBACK followed by the next device message within the peer's
#: delayed-ACK window holds that message back by ~40 ms (Nagle); see ``bench/meter_bridge.py``.
MEASUREMENT_QOS = 0


class SourceChannel:
    """One source of one site: the path from its driver to the site's state (a driver's ``Sink``)."""

    def __init__(self, bridge: MeterBridge, site: SiteRuntime, source: SourceBase, driver: Driver) -> None:
        self.bridge = bridge
        self.site = site
        self.source = source
        self.driver = driver
        self.gate = PlausibilityGate(site.config.plausibility)
        self.online: bool | None = None
        self.accepted = 0
        self.rejected = 0
        #: Payloads the driver could not read (reported as the driver's error code; not ``delivered``).
        self.unreadable = 0
        self.supervisor: Supervisor | None = None
        #: A total this source gave could not be bounded per phase, and that was reported (once until it can).
        self.unsplit_reported = False

    def delivered(self) -> int:
        return self.accepted + self.rejected

    async def sample(self, sample: Sample, origin: str) -> None:
        clock = self.bridge.clock
        now = clock.monotonic()
        self.site.freshness.seen(self.source.id, now)
        await self.set_online(True)
        config = self.site.config
        try:
            self.gate.check_sample(sample)
            normalized = normalize(self.source, sample, nominal_voltage=config.nominal_voltage,
                                   site_phases=config.phases, generation=self.site.state.generation(sample))
            self.gate.check_updates(normalized.updates)
        except Implausible as exc:
            self.rejected += 1
            await self.reject(origin, "implausible", f"source {self.source.id}: {exc}", _describe(sample))
            return
        normalized.updates, notices = self.gate.screen_energy(normalized.updates)
        self.accepted += 1
        self.site.state.apply(self.source.id, normalized, clock.now(), now)
        await self.site.publisher.request()
        for notice in notices:
            await self.reject(origin, notice.code, f"source {self.source.id}: {notice.message}", _describe(sample))
        if normalized.unsplit is not None and not self.unsplit_reported:
            self.unsplit_reported = True
            await self.reject(origin, "split_unknown", normalized.unsplit, _describe(sample))
        elif normalized.unsplit is None and any(u.key.field == "grid_current" for u in normalized.updates):
            self.unsplit_reported = False

    async def reject(self, origin: str, code: str, message: str, payload: str = "") -> None:
        await self.bridge.report(self.site.name, origin, code, message, payload)

    async def set_online(self, online: bool) -> None:
        if self.online is online:
            return
        self.online = online
        await self.publish_availability()

    async def publish_availability(self) -> None:
        if self.online is None:
            return
        topic = self.bridge.runtime.topics.meter_availability(self.site.name, self.source.id)
        await self.bridge.runtime.publish(topic, ONLINE if self.online else OFFLINE, retain=True)

    async def on_message(self, message: RawIncoming) -> None:
        assert isinstance(self.driver, MqttDriver)
        if message.retain and not self.source.accept_retained:
            return  # a retained value may be any age: wait for a live one
        try:
            sample = self.driver.parse(message.topic, message.payload)
        except DeviceDataError as exc:
            self.unreadable += 1
            await self.site.note_seen(self)
            await self.reject(message.topic, exc.code, f"source {self.source.id}: {exc}",
                              message.payload.decode("utf-8", "replace"))
            return
        if sample is not None:
            await self.sample(sample, message.topic)

    async def on_driver_failure(self, reason: str, retry_in: float) -> None:
        await self.set_online(False)
        origin = self.driver.origin if isinstance(self.driver, TaskDriver) else self.source.id
        await self.reject(
            origin, "driver_failed", f"source {self.source.id}: {reason}; restarting in {retry_in:g}s"
        )


class SiteRuntime:
    """A site's state, its publisher, its freshness and its sources."""

    def __init__(self, bridge: MeterBridge, name: str, config: SiteConfig) -> None:
        self.bridge = bridge
        self.name = name
        self.config = config
        self.state = SiteState(name, config)
        self.freshness = Freshness(config.stale_after)
        self.publisher = CoalescingPublisher(config.coalesce, bridge.clock, self.publish, bridge.runtime.spawn)
        self.channels: dict[str, SourceChannel] = {}

    async def note_seen(self, channel: SourceChannel) -> None:
        self.freshness.seen(channel.source.id, self.bridge.clock.monotonic())
        await channel.set_online(True)

    async def publish(self) -> None:
        measurement = self.state.measurement(self.bridge.clock.now())
        topic = self.bridge.runtime.topics.measurement(self.name)
        await self.bridge.runtime.publish(topic, measurement, retain=True, qos=MEASUREMENT_QOS)

    async def watch(self) -> None:
        """Drop stale fields (republishing) and mark silent sources offline, forever."""
        clock = self.bridge.clock
        tick = max(0.02, min(self.config.stale_after / 5, 1.0))
        while True:
            await clock.sleep(tick)
            now = clock.monotonic()
            dropped = self.state.expire(now)
            for source_id in self.freshness.gone_silent(now):
                channel = self.channels[source_id]
                await channel.set_online(False)
                await channel.reject(
                    source_id, "stale",
                    f"source {source_id} delivered nothing for {self.config.stale_after:g}s: its values are dropped",
                )
            if dropped:
                log.info("site %s: dropped stale %s", self.name, ", ".join(str(k) for k in dropped))
                await self.publisher.request()


class MeterBridge:
    def __init__(self, config: MeterBridgeConfig, runtime: Runtime, clock: Clock) -> None:
        self.config = config
        self.runtime = runtime
        self.clock = clock
        self.sites: dict[str, SiteRuntime] = {}
        self._started = False
        self.errors = 0
        runtime.metrics.register(MeterBridgeCollector(self))

    def install(self) -> MeterBridge:
        """Build every driver and declare the MQTT routes; tasks start when the runtime connects."""
        for name, site_config in self.config.sites.items():
            site = SiteRuntime(self, name, site_config)
            self.sites[name] = site
            for source in site_config.sources:
                driver = build_driver(source, self.clock)
                channel = SourceChannel(self, site, source, driver)
                site.channels[source.id] = channel
                if isinstance(driver, MqttDriver):
                    for topic_filter in driver.filters:
                        self.runtime.raw_route(topic_filter, latest=driver.holds_state(topic_filter))(
                            channel.on_message)
                elif isinstance(driver, TaskDriver):
                    channel.supervisor = Supervisor(
                        driver, channel, self.clock, channel.on_driver_failure, channel.delivered
                    )
        self.runtime.on_connect(self._on_connect)
        return self

    async def _on_connect(self) -> None:
        if not self._started:
            self._started = True
            for site in self.sites.values():
                self.runtime.spawn(site.watch())
                for channel in site.channels.values():
                    if channel.supervisor is not None:
                        self.runtime.spawn(channel.supervisor.run())
            return
        for site in self.sites.values():  # a reconnect: say again what we know
            for channel in site.channels.values():
                await channel.publish_availability()
            await site.publisher.request()

    async def shutdown(self) -> None:
        """A clean stop: say ``offline`` for every source that was ``online`` (the Last Will only covers
        the service itself)."""
        for site in self.sites.values():
            for channel in site.channels.values():
                await channel.set_online(False) if channel.online else None

    async def report(self, site: str, origin: str, code: str, message: str, payload: str = "") -> None:
        """Log a rejected reading or a failing source and publish an ErrorReport on the site's errors topic."""
        self.errors += 1
        log.warning("site %s: %s from %s: %s", site, code, origin, message)
        report = ErrorReport(service=self.runtime.service, topic=origin[:512], error=code[:64],
                             message=message[:1000], payload=payload[:512])
        await self.runtime.publish(self.runtime.topics.errors(site), report)


def _describe(sample: Sample) -> str:
    return ", ".join(f"{name}={value:g}" for name, value in sample.values())

