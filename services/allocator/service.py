"""The allocator service: one instance serves every site under the root.

It listens to each site's measurement, load states and availability, settings and ``/set`` commands, and
its own retained setpoints and site decisions (that is where its memory lives: any instance can take
over). A change schedules a decision (coalesced, at most one per ``timers.min_interval``; at least one
per ``timers.refresh``); a decision runs the pure core on a snapshot and publishes one retained setpoint
per load and one retained site decision.

What it hears is judged, not believed:

* Only configured sites are served; anything about another site gets one error report and creates nothing.
* Freshness is judged on the allocator's clock (:mod:`.freshness`): a reading or state counts from when it
  was received at the latest, and one stamped beyond ``future_tolerance`` ahead is reported and dropped.
* A load whose state is older than ``load_stale_after``, whose availability is ``offline``, or whose
  adapter service (``load_service``) is offline goes to the core as unavailable, and the reason is
  reported once per change.
* The installation's limits (:mod:`.limits`) come from the config: a ``/set`` that would raise one is
  rejected, retained settings that would are clamped and reported.
* The grid operator's signal (``<site>/grid-limit/set``, or a relay contact, :mod:`.grid_limit`) is stamped
  with the allocator's clock when it arrives; the core decides what is in force (expiry, silence) and the
  service publishes it, retained, on ``<site>/grid-limit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import ValidationError

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig
from shared.discovery import Discovery
from shared.models import (
    Calibration,
    ErrorReport,
    GridLimitSet,
    GridLimitState,
    LoadPlan,
    LoadSettings,
    LoadSettingsSet,
    LoadState,
    PlanSet,
    PriceForecast,
    PvForecast,
    Setpoint,
    SiteDecision,
    SiteMeasurement,
    SiteSettings,
    SiteSettingsSet,
    Timers,
)
from shared.mqtt import ONLINE, Incoming, RawIncoming, Runtime
from shared.payload import check_bounds
from shared.spare_time import SpareWork
from shared.topics import Leaf, TopicRef, Topics

from .announce import Announcements, is_defaults
from .calibration import DetectorSettings, detected_legs_changed, new_findings, observe, same_findings
from .change_gate import ChangeGate, decision_content, setpoint_content
from .config import AllocatorConfig
from .core import allocate
from .discovery import DiscoveryAnnouncer
from .freshness import judge_measurement, judge_state, only_renewed
from .grid_limit import GridLimitConfig, from_command, from_relay, restored
from .limits import breaches, clamped
from .loop import DecisionLoop
from .metrics import AllocatorMetrics
from .plans import content as plan_content
from .plans import explained, requested, soc_moved, worked_out
from .publisher import setpoint, site_decision
from .reports import ReportThrottle
from .settings_store import SettingsRejected, describe, merge_load, merge_site
from .state import Liveness, Registry, SiteState

SERVICE = "allocator"
#: The longest a reading's calibration waits for spare time (s), and how many may wait before the oldest are
#: dropped (the detector then starts afresh at the gap, as after any long pause of the meter).
CALIBRATION_PATIENCE = 5.0
CALIBRATIONS_BEHIND = 10_000

SetT = TypeVar("SetT", SiteSettingsSet, LoadSettingsSet)


def overloaded(measurement: SiteMeasurement, settings: SiteSettings) -> bool:
    """Whether a phase draws more than its limit less the margin: a cut that must not wait."""
    limit = settings.fuse_limit - settings.margin
    return any(reading.value > limit for reading in measurement.grid_current.values())


def _site_of(ref: TopicRef | None, payload_site: str) -> str:
    """The site a message is about; the payload must name the site of its topic."""
    if ref is None or ref.site is None:
        raise ValueError("topic names no site")
    if payload_site != ref.site:
        raise ValueError(f"payload names site {payload_site!r} but the topic is site {ref.site!r}")
    return ref.site


def _load_of(ref: TopicRef | None, payload_load: str) -> str:
    if ref is None or ref.id is None:
        raise ValueError("topic names no load")
    if payload_load != ref.id:
        raise ValueError(f"payload names load {payload_load!r} but the topic is load {ref.id!r}")
    return ref.id


class AllocatorService:
    """The allocator's routes, state and decision loop around one :class:`Runtime`."""

    def __init__(self, config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self.section = config.section("allocator", AllocatorConfig)
        self.clock = clock
        self.topics = Topics(config.root)
        self.runtime = Runtime(SERVICE, config.broker(), self.topics)
        self.runtime.serve_only(self.section.serve_only)  # another instance's sites: dropped before any parsing
        self.registry = Registry(self.section)
        self.detector = DetectorSettings(lag=self.section.calibration_lag)
        self.loop = DecisionLoop(clock, self.decide, self._timers, self.runtime.spare_time)
        #: Each reading's calibration, in order, when the inbox is empty (never before a cut).
        self.calibrations = SpareWork(self.runtime.spare_time, CALIBRATION_PATIENCE, CALIBRATIONS_BEHIND,
                                      self.runtime.log)
        self.discovery = (DiscoveryAnnouncer(self.runtime, Discovery(self.topics, self.section.discovery_prefix))
                          if self.section.home_assistant else None)
        self.announcements = Announcements(self.runtime, self.topics, self.section, self.discovery)
        #: Unchanged setpoints and decisions are republished only every ``refresh``.
        self._gate = ChangeGate()
        self._gate_connection = 0
        #: Why the service that publishes the load states is gone (None while it is not known to be).
        self._load_service_gone: str | None = None
        self._throttle = ReportThrottle(self.section.report_interval)
        self.metrics = AllocatorMetrics(self.registry, self.runtime.metrics)
        self._declare_routes()

    # -- routes ------------------------------------------------------------------------------------
    def _declare_routes(self) -> None:
        rt, topics = self.runtime, self.topics

        @rt.route(topics.measurement_filter(), SiteMeasurement, latest=True)
        async def on_measurement(msg: Incoming[SiteMeasurement]) -> None:
            site = await self._served(_site_of(msg.ref, msg.payload.site), msg.topic)
            if site is None:
                return
            judged = judge_measurement(msg.payload, self._now(), self.section.future_tolerance)
            if judged.future:
                await self._report_future(site.site, msg.topic, "the measurement", judged.future)
            site.measurement = judged.measurement
            if overloaded(judged.measurement, site.settings):
                await self.loop.cut(site.site)  # decided here and now: before the rest of the inbox is read
            else:
                self.loop.changed(site.site)
            if self.section.calibration and self.loop.is_open:
                # (not before the retained state settled: the detector continues from its retained copy)
                states = [entry.state for entry in site.loads.values() if entry.state is not None]
                self.calibrations.put(functools.partial(self.calibrate, site, judged.measurement, states,
                                                        self._now()))

        @rt.route(topics.load_filter(Leaf.STATE), LoadState, latest=True)
        async def on_load_state(msg: Incoming[LoadState]) -> None:
            site = await self._served(_site_of(msg.ref, msg.payload.site), msg.topic)
            if site is None:
                return
            entry = self.registry.load(site.site, _load_of(msg.ref, msg.payload.load))
            if entry.plan is not None and soc_moved(entry.planned_soc, msg.payload.soc):
                site.replan = True  # the energy a plan still needs changed
            before, now = entry.state, self._now()
            entry.state, entry.untrusted = judge_state(msg.payload, now, self.section.future_tolerance)
            entry.seen = True
            if entry.untrusted is not None:
                await self._report_future(site.site, msg.topic, f"load {msg.payload.load}", [entry.untrusted])
            if self.discovery is not None:
                self.discovery.load(site.site, msg.payload.load, msg.payload.name, msg.payload.kind)
            if not only_renewed(before, entry.state, now, self.section.load_stale_after):
                self.loop.changed(site.site)

        @rt.raw_route(topics.load_filter(Leaf.AVAILABILITY), latest=True)
        async def on_load_availability(msg: RawIncoming) -> None:
            ref = topics.parse(msg.topic)
            if ref.site is None or ref.id is None or self.registry.served(ref.site) is None:
                return
            entry = self.registry.load(ref.site, ref.id)
            online = msg.payload.strip().decode("utf-8", "replace") != "offline"
            if online != entry.online:
                entry.online = online
                if self.registry.site(ref.site).served:
                    self.loop.changed(ref.site)

        @rt.raw_route(topics.service_availability(self.section.load_service), latest=True)
        async def on_load_service_availability(msg: RawIncoming) -> None:
            offline = msg.payload.strip() == b"offline"
            gone = f"the {self.section.load_service} service that publishes it is offline" if offline else None
            if gone != self._load_service_gone:
                self._load_service_gone = gone
                self.runtime.log.warning("%s service %s", self.section.load_service,
                                         "offline: every load unavailable" if offline else "online again")
                for site_id in list(self.registry.sites):
                    self.loop.changed(site_id)

        @rt.route(topics.site_settings_filter(), SiteSettings, latest=True)
        async def on_site_settings(msg: Incoming[SiteSettings]) -> None:
            if is_defaults(msg.payload):
                return  # published defaults (ours, or a peer's): the configuration in force applies
            site = await self._served(_site_of(msg.ref, msg.payload.site), msg.topic)
            if site is None:
                return
            settings = msg.payload
            raised = breaches(settings, site.installation)
            if raised:
                # retained from before (or by someone else): never trusted past the installation's config
                settings = clamped(settings, site.installation)
                await self._report_once(site.site, msg.topic, "limit_clamped",
                                        "retained settings held to the configured installation: " + "; ".join(raised))
            if site.take_settings(settings):
                self.loop.changed(site.site)

        @rt.route(topics.site_settings_set_filter(), SiteSettingsSet)
        async def on_site_settings_set(msg: Incoming[SiteSettingsSet]) -> None:
            if msg.ref is None or msg.ref.site is None:
                raise ValueError("topic names no site")
            await self.set_site(msg.ref.site, msg.payload)

        @rt.raw_route(topics.site_settings_set_field("+", "+"))
        async def on_site_settings_set_field(msg: RawIncoming) -> None:
            site, field = self._field_target(msg.topic)
            command = await self._field_command(SiteSettingsSet, field, msg)
            if command is not None:
                await self.set_site(site, command)

        @rt.route(topics.load_filter(Leaf.SETTINGS), LoadSettings, latest=True)
        async def on_load_settings(msg: Incoming[LoadSettings]) -> None:
            if is_defaults(msg.payload):
                return  # published defaults (ours, or a peer's): the configuration in force applies
            site = await self._served(_site_of(msg.ref, msg.payload.site), msg.topic)
            if site is None:
                return
            load = _load_of(msg.ref, msg.payload.load)
            self.registry.load(site.site, load)
            if site.take_load_settings(load, msg.payload):
                self.loop.changed(site.site)

        @rt.route(topics.load_filter(Leaf.SETTINGS_SET), LoadSettingsSet)
        async def on_load_settings_set(msg: Incoming[LoadSettingsSet]) -> None:
            if msg.ref is None or msg.ref.site is None or msg.ref.id is None:
                raise ValueError("topic names no load")
            await self.set_load(msg.ref.site, msg.ref.id, msg.payload)

        @rt.raw_route(topics.load_settings_set_field("+", "+", "+"))
        async def on_load_settings_set_field(msg: RawIncoming) -> None:
            ref = topics.parse(msg.topic)
            if ref.site is None or ref.id is None:
                return
            command = await self._field_command(LoadSettingsSet, msg.topic.rsplit("/", 1)[1], msg)
            if command is not None:
                await self.set_load(ref.site, ref.id, command)

        @rt.route(topics.prices("+"), PriceForecast, latest=True)
        async def on_prices(msg: Incoming[PriceForecast]) -> None:
            site = self.registry.served(_site_of(msg.ref, msg.payload.site))
            if site is not None:
                site.prices, site.replan = msg.payload, True
                self.loop.changed(site.site)

        @rt.route(topics.pv_forecast("+"), PvForecast, latest=True)
        async def on_pv_forecast(msg: Incoming[PvForecast]) -> None:
            site = self.registry.served(_site_of(msg.ref, msg.payload.site))
            if site is not None:
                site.pv_forecast, site.replan = msg.payload, True
                self.loop.changed(site.site)

        @rt.raw_route(topics.load_filter(Leaf.PLAN_SET))
        async def on_plan_set(msg: RawIncoming) -> None:
            ref = topics.parse(msg.topic)
            if ref.site is None or ref.id is None:
                return
            check_bounds(msg.payload)
            text = msg.payload.strip()
            try:
                command = None if text in (b"", b"null") else PlanSet.model_validate_json(text)
            except ValidationError as exc:
                await self.runtime.report_error(msg.topic, "validation", describe(exc), msg.payload)
                return
            await self.set_plan(ref.site, ref.id, command)

        @rt.route(topics.load_filter(Leaf.PLAN), LoadPlan, qos=0, latest=True)
        async def on_own_plan(msg: Incoming[LoadPlan]) -> None:
            site = self.registry.served(_site_of(msg.ref, msg.payload.site))
            if site is None:
                return
            self.registry.load(site.site, _load_of(msg.ref, msg.payload.load))  # (with its configured settings)
            if site.take_plan(msg.payload):
                site.replan = True
                self.loop.changed(site.site)

        # Our own output, read back: at QoS 0, as nothing is lost while the connection holds, and after a
        # reconnect the retained copies come again. Saves an acknowledgement per message (three a decision).
        # The echo of a setpoint or decision of ours is no news (its memory is what remember() holds, with the
        # same ts): dropped unparsed (own); another instance's, or one from before a restart, is taken.
        @rt.route(topics.load_filter(Leaf.SETPOINT), Setpoint, qos=0, latest=True, own=True)
        async def on_own_setpoint(msg: Incoming[Setpoint]) -> None:
            site = self.registry.served(_site_of(msg.ref, msg.payload.site))
            if site is None:
                return
            self.registry.load(site.site, _load_of(msg.ref, msg.payload.load))
            site.take_setpoint(msg.payload)

        @rt.route(topics.decision("+"), SiteDecision, qos=0, latest=True, own=True)
        async def on_own_decision(msg: Incoming[SiteDecision]) -> None:
            site = self.registry.served(_site_of(msg.ref, msg.payload.site))
            if site is not None:
                site.take_decision(msg.payload)

        @rt.route(topics.calibration("+"), Calibration, qos=0, latest=True)
        async def on_own_calibration(msg: Incoming[Calibration]) -> None:
            site = self.registry.served(_site_of(msg.ref, msg.payload.site))
            if site is not None:
                site.take_calibration(msg.payload)

        @rt.route(topics.grid_limit_set("+"), GridLimitSet)
        async def on_grid_limit_set(msg: Incoming[GridLimitSet]) -> None:
            if msg.ref is None or msg.ref.site is None:
                raise ValueError("topic names no site")
            site = await self._served(msg.ref.site, msg.topic)
            if site is not None and site.take_grid_signal(from_command(msg.payload, self._now())):
                await self.loop.cut(site.site)  # a limit is a cut: decided at once

        @rt.route(topics.grid_limit("+"), GridLimitState, qos=0, latest=True)
        async def on_own_grid_limit(msg: Incoming[GridLimitState]) -> None:
            site = self.registry.served(_site_of(msg.ref, msg.payload.site))
            signal = restored(msg.payload)
            if site is not None and signal is not None and site.grid_signal is None:
                site.take_grid_signal(signal)  # after a restart: the limit holds until the source speaks

        for site_id, grid_config in self.section.grid_limits.items():
            if grid_config.relay is not None and self.section.serves(site_id):
                self._relay_route(site_id, grid_config)

        @rt.raw_route(rt.availability_topic)
        async def on_own_availability(msg: RawIncoming) -> None:
            # Our own "online", published after every subscription was made, comes back after every
            # retained message those subscriptions brought: the memory has settled.
            if not msg.retain and msg.payload == ONLINE.encode():
                self.loop.open()

        @rt.on_connect
        async def settle_at_most() -> None:
            reconnect = self.runtime.stats.connects > 1
            await self.clock.sleep(self.section.settle)
            if not self.loop.is_open:
                self.runtime.log.info("retained state settle window (%.1fs) over", self.section.settle)
            self.loop.open()
            if reconnect:
                await self.republish_settings()

        if self.discovery is not None:
            announcer = self.discovery

            @rt.raw_route(announcer.discovery.status_topic)
            async def on_home_assistant_status(msg: RawIncoming) -> None:
                if msg.payload.strip() == b"online":
                    announcer.announce_all()

            @rt.raw_route(announcer.discovery.config_filter, latest=True)
            async def on_home_assistant_config(msg: RawIncoming) -> None:
                if msg.retain:
                    announcer.found_config(msg.topic, msg.payload)

        @rt.raw_route(topics.load_filter(Leaf.STATE), latest=True)
        async def on_load_state_cleared(msg: RawIncoming) -> None:
            if msg.payload:
                return  # a state: the typed route takes it
            ref = topics.parse(msg.topic)
            if ref.site is None or ref.id is None or ref.site not in self.registry.sites:
                return
            entry = self.registry.sites[ref.site].loads.get(ref.id)
            if entry is not None and entry.state is not None:
                # the adapter removed the load: no more decisions for it, and no setpoint left behind
                entry.state = None
                self.runtime.log.info("load %s/%s removed", ref.site, ref.id)
                if self.discovery is not None:
                    self.discovery.remove_load(ref.site, ref.id)
                await self.runtime.publish(topics.setpoint(ref.site, ref.id), None, retain=True)
                self.loop.changed(ref.site)

    def _relay_route(self, site_id: str, grid_config: GridLimitConfig) -> None:
        """A relay contact (any MQTT topic with on/off payloads) as the grid operator's signal for one site."""
        relay = grid_config.relay
        assert relay is not None

        @self.runtime.raw_route(relay.topic, latest=True)
        async def on_grid_relay(msg: RawIncoming) -> None:
            site = self.registry.site(site_id)
            try:
                signal = from_relay(relay, msg.payload, self._now())
            except ValueError as exc:
                await self.runtime.report_error(self.topics.grid_limit_set(site_id), "bad_relay_state",
                                                f"grid-limit relay {msg.topic}: {exc}")
                return
            if site.take_grid_signal(signal):
                await self.loop.cut(site_id)

    # -- settings --------------------------------------------------------------------------------
    async def republish_settings(self) -> None:
        """Publish every set setting again (a broker without persistence forgets retained messages)."""
        for site_id, site in list(self.registry.sites.items()):
            if site.settings_ts is not None:
                await self.runtime.publish(self.topics.site_settings(site_id), site.settings, retain=True)
            for load, entry in list(site.loads.items()):
                if entry.settings is not None and entry.settings_ts is not None:
                    await self.runtime.publish(self.topics.load_settings(site_id, load), entry.settings, retain=True)

    async def set_site(self, site_id: str, command: SiteSettingsSet) -> None:
        """Apply a site ``/set``: merge, validate the whole, publish retained, decide at once. One that would
        raise an installation limit past the config is rejected whole (the runtime reports it)."""
        site = await self._served(site_id, self.topics.site_settings_set(site_id))
        if site is None:
            return
        settings = merge_site(site.settings, command, self._stamp(site.settings_ts))
        raised = breaches(settings, site.installation)
        if raised:
            raise SettingsRejected("installation limits come from the config and may only be made safer: "
                                   + "; ".join(raised))
        site.take_settings(settings)
        self.runtime.log.info("site %s settings changed: %s", site_id, command.model_dump(exclude_unset=True))
        await self.runtime.publish(self.topics.site_settings(site_id), settings, retain=True)
        self.loop.changed(site_id)

    async def set_load(self, site_id: str, load: str, command: LoadSettingsSet) -> None:
        """Apply a load ``/set`` the same way; one for a load nobody configured and no adapter announced is
        reported and creates nothing."""
        site = await self._served(site_id, self.topics.load_settings_set(site_id, load))
        if site is None:
            return
        known = site.loads.get(load)
        if not self.section.load_configured(site_id, load) and (known is None or not known.seen):
            await self.runtime.report_error(
                self.topics.load_settings_set(site_id, load), "unknown_load",
                f"site {site_id} has no load {load!r}: it is not configured and no adapter has published its "
                "state; nothing was applied")
            return
        entry = self.registry.load(site_id, load)
        settings = merge_load(entry.settings or LoadSettings(site=site_id, load=load), command,
                              self._stamp(entry.settings_ts))
        site.take_load_settings(load, settings)
        self.runtime.log.info("load %s/%s settings changed: %s", site_id, load,
                              command.model_dump(exclude_unset=True))
        await self.runtime.publish(self.topics.load_settings(site_id, load), settings, retain=True)
        self.loop.changed(site_id)

    async def set_plan(self, site_id: str, load: str, command: PlanSet | None) -> None:
        """Set a load's departure plan (``None`` clears it): worked out and published at the next decision."""
        site = await self._served(site_id, self.topics.plan_set(site_id, load))
        if site is None:
            return
        known = site.loads.get(load)
        if not self.section.load_configured(site_id, load) and (known is None or not known.seen):
            await self.runtime.report_error(
                self.topics.plan_set(site_id, load), "unknown_load",
                f"site {site_id} has no load {load!r}: it is not configured and no adapter has published its "
                "state; no plan was set")
            return
        entry = self.registry.load(site_id, load)
        if command is None:
            entry.plan = entry.planned_at = None
            self.runtime.log.info("load %s/%s plan cleared", site_id, load)
            await self.runtime.publish(self.topics.plan(site_id, load), None, retain=True)
        else:
            stamp = self._stamp(entry.plan.ts if entry.plan is not None else None)
            entry.plan, entry.planned_at = requested(site_id, load, command, entry.state, stamp), None
            self.runtime.log.info("load %s/%s plan set: %s", site_id, load, command.model_dump(exclude_unset=True))
        site.replan = True
        self.loop.changed(site_id)

    async def _replan(self, site: SiteState, now: datetime) -> None:
        """Work each plan out again when an input changed (prices, solar forecast, SOC, a new plan) or
        ``plan_interval`` passed (headroom and delivered energy move); publish it when what it says changed."""
        forced, site.replan = site.replan, False
        for load, entry in list(site.loads.items()):
            if entry.plan is None:
                continue
            if not forced and entry.planned_at is not None and \
                    (now - entry.planned_at).total_seconds() < self.section.plan_interval:
                continue
            before = entry.plan
            entry.plan, entry.planned_at = worked_out(site, load, before, now), now
            entry.planned_soc = entry.state.soc if entry.state is not None else None
            if plan_content(entry.plan) != plan_content(before):
                await self.runtime.publish(self.topics.plan(site.site, load), entry.plan, retain=True)

    def _field_target(self, topic: str) -> tuple[str, str]:
        ref = self.topics.parse(topic)
        if ref.site is None:
            raise ValueError("topic names no site")
        return ref.site, topic.rsplit("/", 1)[1]

    async def _field_command(self, model: type[SetT], field: str, msg: RawIncoming) -> SetT | None:
        """A one-field command from ``.../set/<field>``; a bad field or value is reported, None returned."""
        if not msg.payload:
            return None
        try:
            return model.from_field(field, msg.payload)
        except ValidationError as exc:
            await self.runtime.report_error(msg.topic, "validation", describe(exc), msg.payload)
            return None

    async def _served(self, site: str, topic: str) -> SiteState | None:
        """The site's state, now served (its first input schedules its first decision); None for a site
        another instance serves (``allocator.serve_only``) and for one nobody configured (reported once per
        ``report_interval``, nothing kept)."""
        state = self.registry.served(site)
        if state is None:
            if self.section.serve_only is None:  # (else it may be another instance's: not ours to report)
                await self._report_once(site, topic, "unknown_site",
                                        f"site {site!r} is not in the allocator's config: not served, nothing kept")
            return None
        if not state.served:
            state.served = True
            self.loop.changed(site)
        if self.discovery is not None and site not in self.discovery.sites:
            self.discovery.site(site)
        return state

    def _timers(self, site: str) -> Timers:
        return self.registry.site(site).settings.timers

    async def _report_once(self, site: str, topic: str, error: str, message: str) -> None:
        """An error report on ``site``'s errors topic, at most once per ``report_interval`` per site and code."""
        if self._throttle.due((site, error), self.clock.monotonic()):
            await self.runtime.report_error(topic, error, message, site=site)

    async def _report_future(self, site: str, topic: str, what: str, readings: list[str]) -> None:
        """A reading or state stamped in the future: reported once per interval per topic, not trusted."""
        if self._throttle.due((topic, "future_timestamp"), self.clock.monotonic()):
            await self.runtime.report_error(
                topic, "future_timestamp",
                f"{what}: not trusted, stamped in the future: {'; '.join(readings)} (tolerance "
                f"{self.section.future_tolerance:g} s); check the sender's clock", site=site)

    async def _report_unavailable(self, site: SiteState, liveness: Liveness) -> None:
        """Say once why each load went unavailable against its own word (again when the reason changes)."""
        now_unavailable = site.unavailable(liveness)
        for load, gone in now_unavailable.items():
            if site.reported_unavailable.get(load) != gone.code:
                await self.runtime.report_error(self.topics.load_state(site.site, load), gone.code,
                                                f"load {load} is passed to the allocation as unavailable: {gone.why}")
        site.reported_unavailable = {load: gone.code for load, gone in now_unavailable.items()}

    def _now(self) -> datetime:
        return self.clock.now()

    def _stamp(self, held: datetime | None) -> datetime:
        """``ts`` for new settings: now, but always after those they replace (clocks can disagree), so every
        instance takes them as the newer."""
        now = self._now()
        return now if held is None or now > held else held + timedelta(microseconds=1)

    # -- deciding ----------------------------------------------------------------------------------
    async def decide(self, site_id: str) -> None:
        """Run the core on the site's snapshot and publish the setpoints and the site decision."""
        started = time.perf_counter()
        site = self.registry.site(site_id)
        await self.announcements.served(site, self.registry)
        now = self._now()
        liveness = Liveness(now=now, stale_after=self.section.load_stale_after, service_gone=self._load_service_gone)
        await self._report_unavailable(site, liveness)
        await self._replan(site, now)
        try:
            snapshot = site.snapshot(now, liveness)
            allocation = allocate(snapshot, now)
        except Exception as exc:
            self.metrics.failed(site_id)
            self.runtime.log.exception("allocation for site %s failed", site_id)
            await self.runtime.report_error(self.topics.decision(site_id), "allocation_failed",
                                            f"{type(exc).__name__}: {exc}")
            return
        site.remember(allocation.memory, {d.load: d.memory for d in allocation.decisions}, now)
        # Handed to the connection in order (setpoints first), never waiting for acknowledgements.
        mono, refresh = self.clock.monotonic(), snapshot.settings.timers.refresh
        gate = self._gate
        if self._gate_connection != self.runtime.stats.connects:
            # a new connection: everything goes out once (the broker may have lost what it held)
            gate.forget()
            self._gate_connection = self.runtime.stats.connects
        settings = snapshot.settings
        planned = site.planned(now)
        # an unchanged setpoint is renewed three times in its lifetime (every 20 s by default), or every
        # refresh if that is longer: its renewals were the most frequent message at rest (a thousand loads)
        renew = max(refresh, settings.timers.setpoint_lifetime / 3)
        # the setpoints in one push, before the report is built (shared/write_through.py): the broker is woken
        # once for all of them, and the cut is on the wire before anything else is done
        with self.runtime.together():
            for d in allocation.decisions:
                if d.load in planned:
                    d = explained(d, planned[d.load], now)
                topic = self.topics.setpoint(site_id, d.load)
                if gate.passes(topic, setpoint_content(d, settings.voltage), mono, renew):
                    await self.runtime.publish(topic, setpoint(site_id, d, settings, now), retain=True)
        if gate.passes(topic := self.topics.decision(site_id), decision_content(allocation), mono, refresh):
            await self.runtime.publish(topic, site_decision(allocation, now), retain=True)
        limit = allocation.grid_limit
        if limit is not None:
            content = limit.model_dump_json(exclude={"ts", "heard"})
            if gate.passes(topic := self.topics.grid_limit(site_id), content, mono, refresh):
                await self.runtime.publish(topic, limit, retain=True)
        self.metrics.decided(site_id, allocation, time.perf_counter() - started)

    # -- calibration -------------------------------------------------------------------------------
    async def calibrate(self, site: SiteState, measurement: SiteMeasurement, states: list[LoadState],
                        now: datetime) -> None:
        """Feed the phase mapping and polarity detector with a reading and the load states when it came;
        report each new finding once (warn, never override: only loads with ``auto_phase_map`` use a detected
        mapping); publish the calibration when it changed, at most every ``calibration_interval`` unless there
        is a new finding."""
        before = site.calibration
        after = observe(before, measurement, states, now, self.detector)
        site.calibration = after
        topic = self.topics.calibration(site.site)
        sources = {p: reading.source for p, reading in measurement.grid_current.items()}
        findings = new_findings(before, after, sources)
        for finding in findings:
            self.runtime.log.warning("site %s: %s", site.site, finding.message)
            await self.runtime.publish(self.topics.errors(site.site), ErrorReport(
                ts=now, service=SERVICE, topic=topic, error=finding.error, message=finding.message))
        if detected_legs_changed(before, after):
            self.loop.changed(site.site)  # a load with auto_phase_map decides on the new mapping
        published, at = site.calibration_published, site.calibration_published_at
        if same_findings(published, after):
            return
        if not findings and at is not None and (now - at).total_seconds() < self.section.calibration_interval:
            return
        site.calibration_published, site.calibration_published_at = after, now
        await self.runtime.publish(topic, after, retain=True)

    # -- running -----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until cancelled."""
        for site, state in self.registry.sites.items():
            if state.served:
                self.loop.changed(site)
        calibrating = asyncio.get_running_loop().create_task(self.calibrations.run(), name="calibrations")
        try:
            await self.runtime.run()
        finally:
            calibrating.cancel()
            await self.loop.close()


@contextlib.asynccontextmanager
async def running(
    config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK, timeout: float = 10.0
) -> AsyncIterator[AllocatorService]:
    """Run an allocator in the background for the duration of the block (tests, benchmarks, the demo)."""
    service = AllocatorService(config, clock)
    task = asyncio.get_running_loop().create_task(service.run())
    try:
        await service.runtime.wait_connected(timeout)
        yield service
    finally:
        await service.runtime.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    """Run the allocator for every site under the root until cancelled."""
    await AllocatorService(config, clock).run()
