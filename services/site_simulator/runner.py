"""Run a scenario: a broker, the four services and the simulated site in one process, on one scaled clock.

The site's devices speak their real protocols to the real services: each charger is an OCPP client of the
gateway, the grid meter a Shelly Pro 3EM on MQTT, the battery and inverter a SunSpec Modbus server, the
boiler a Shelly plug. The simulator listens to what the allocator publishes only to show and record it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.broker import BrokerStartError, Mosquitto, embedded_broker, free_port
from shared.clock import ScaledClock
from shared.config import AmpmqConfig
from shared.models import (
    GridLimitSet,
    LoadPlan,
    LoadState,
    Mode,
    Reason,
    Setpoint,
    SiteDecision,
    SiteSettings,
    Timers,
)
from shared.mqtt import Incoming, RawIncoming, Runtime
from shared.services import SERVICES, run_services
from shared.topics import Leaf, Topics

from .charge_point import ChargerDevice
from .grid_operator import run_control_box
from .recorder import Recorder
from .scenario import Scenario
from .shelly import BoilerPlug, Pro3em
from .site import Site
from .sunspec import SunSpecServer
from .tariff import publish_tariff_and_plans
from .wiring import Ports, Wiring, build

log = logging.getLogger("ampmq.site-simulator")
SERVICE = "site-simulator"


@dataclass(slots=True)
class LiveView:
    """What the dashboard shows: the site now and what the services said about it."""

    scenario: Scenario
    site: Site
    recorder: Recorder
    devices: dict[str, ChargerDevice]
    duration: float
    speed: float
    missing: list[str]
    services: dict[str, str] = field(default_factory=dict)
    load_states: dict[str, LoadState] = field(default_factory=dict)
    decision: SiteDecision | None = None
    settings: SiteSettings | None = None
    #: Load id -> its departure plan as the allocator last published it.
    plans: dict[str, LoadPlan] = field(default_factory=dict)
    #: The setpoints the grid operator's limit held back (reason grid_operator_limit), as published.
    dimmed: list[Setpoint] = field(default_factory=list)
    #: The setpoints that paused a load to switch its phases (reason phase_switch), and every setpoint that let a
    #: switching charger's load charge (its phases: how many it charged on).
    phase_switches: list[Setpoint] = field(default_factory=list)
    switched_charging: list[Setpoint] = field(default_factory=list)
    real_started: float = field(default_factory=time.monotonic)

    @property
    def progress(self) -> float:
        return min(1.0, self.site.t / self.duration) if self.duration > 0 else 1.0

    @property
    def timers(self) -> Timers:
        return self.settings.timers if self.settings is not None else Timers()


@dataclass(slots=True)
class RunResult:
    kpis: dict[str, Any]
    view: LiveView


Observer = Callable[[LiveView], None]


def available_services() -> tuple[list[str], list[str]]:
    """The services whose module loads, and a line for each that does not."""
    ok, missing = [], []
    for name, module in SERVICES.items():
        try:
            importlib.import_module(module)
            ok.append(name)
        except Exception as exc:  # an unfinished service must not stop the demo
            missing.append(f"service {name} is missing ({type(exc).__name__}: {exc}); the demo runs without it")
    return ok, missing


async def run_scenario(scenario: Scenario, base: AmpmqConfig, *, speed: float | None = None,
                       duration: float | None = None, observe: Observer | None = None,
                       refresh: float = 0.25, broker: str = "auto", stop: asyncio.Event | None = None
                       ) -> RunResult:
    """Run ``scenario`` to its end (or ``duration`` simulated seconds) and return its KPIs. When ``stop`` is
    set the physics ends at once, the services stop cleanly and the KPIs cover the time reached, marked
    ``partial``."""
    speed = speed or scenario.speed
    duration = duration if duration is not None else scenario.duration
    async with contextlib.AsyncExitStack() as stack:
        url = base.mqtt_url or await _broker(stack, broker)
        site = Site(scenario)
        sunspec = await SunSpecServer(lambda: site.state, battery=scenario.battery is not None,
                                      solar=scenario.solar.peak_power > 0).start()
        stack.push_async_callback(sunspec.stop)
        ports = Ports(url, free_port(), sunspec.port)
        wiring = build(base, scenario, ports)
        names, missing = available_services()
        missing = missing + wiring.missing
        clock = ScaledClock(scenario.start, speed)
        topics = Topics(wiring.config.root)
        runtime = Runtime(SERVICE, url, topics)
        recorder = Recorder(scenario, {c.id for c in scenario.chargers if c.mode is Mode.SOLAR_ONLY}
                            | ({scenario.boiler.id} if scenario.boiler and scenario.boiler.mode is Mode.SOLAR_ONLY
                               else set()), scenario.start)
        gateway_url = f"ws://127.0.0.1:{ports.gateway_port}"
        devices = {c.id: ChargerDevice(site.chargers[c.id], gateway_url, clock, scenario.timing.charger_meter_interval,
                                       physics_now=lambda: site.now) for c in scenario.chargers}
        view = LiveView(scenario, site, recorder, devices, duration, speed, missing)
        _observe(runtime, topics, scenario.site, view)
        meter = Pro3em(runtime, wiring.meter_prefix)
        plug = BoilerPlug(runtime, wiring.boiler_prefix, site.boiler, clock) \
            if site.boiler is not None and wiring.boiler_prefix else None

        tasks: list[asyncio.Task[Any]] = []
        stack.callback(lambda: [t.cancel() for t in tasks])
        tasks.append(asyncio.ensure_future(runtime.run()))
        await runtime.wait_connected(10)
        await meter.online()
        if plug is not None:
            await plug.online()
        services = asyncio.ensure_future(run_services(wiring.config, names, clock))
        services.add_done_callback(lambda task: _services_ended(task, view))
        tasks.append(services)
        tasks += [asyncio.ensure_future(d.run()) for d in devices.values()]
        tasks.append(asyncio.ensure_future(publish_tariff_and_plans(
            runtime, topics, scenario, lambda: view.services.get("allocator") == "online",
            lambda load: load in view.plans)))
        signals: list[GridLimitSet] = []
        if scenario.grid_operator is not None:
            tasks.append(asyncio.ensure_future(run_control_box(scenario.grid_operator, runtime, topics, scenario.site,
                                                               clock, scenario.start.tzinfo, signals)))
        try:
            await _physics(site, clock, duration, view, meter, plug, observe, refresh, stop)
        finally:
            for task in reversed(tasks):
                task.cancel()
            for task in reversed(tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 10)
            _collect_cancelled_publishes()
        timers = view.timers
        kpis = recorder.kpis(site, timers.min_run, timers.min_pause, missing)
        kpis["partial"] = site.t < duration - 1e-6
        kpis["planned_seconds"] = round(duration, 1)
        kpis["reached"] = site.now.astimezone(scenario.start.tzinfo).isoformat(timespec="seconds")
        kpis["speed"] = speed
        kpis["real_seconds"] = round(time.monotonic() - view.real_started, 1)
        kpis["ocpp"] = {cid: {"version": d.spec.ocpp, "connects": d.connects, "messages_sent": d.messages_sent,
                              "profiles_received": d.profiles_received} for cid, d in devices.items()}
        kpis["meter_messages"] = meter.published
        if view.plans:
            kpis["plans"] = {load: {"feasible": p.feasible, "expected_cost": p.expected_cost,
                                    "currency": p.currency, "message": p.message,
                                    "slots": [[s.start.isoformat(), s.end.isoformat(), s.price] for s in p.slots]}
                             for load, p in view.plans.items()}
        if plug is not None:
            kpis["boiler_switches"] = plug.switches
        if scenario.grid_operator is not None:
            kpis["grid_operator"] = {"signals": len(signals), "dimmed_setpoints": len(view.dimmed),
                                     "dimmed_loads": sorted({sp.load for sp in view.dimmed})}
        if any(c.phase_switching for c in scenario.chargers):
            kpis["phase_switching"] = {
                "switch_setpoints": len(view.phase_switches),
                "one_phase_setpoints": sum(1 for sp in view.switched_charging if len(sp.phases) == 1),
                "three_phase_setpoints": sum(1 for sp in view.switched_charging if len(sp.phases) > 1)}
        return RunResult(kpis, view)


#: The embedded broker (pure Python) falls behind above this speed on a busy machine.
EMBEDDED_MAX_SPEED = 240.0


def uses_embedded_broker(kind: str, config: AmpmqConfig) -> bool:
    """Whether a run with ``--broker kind`` ends up on the embedded broker."""
    if config.mqtt_url:
        return False
    if kind == "embedded":
        return True
    return kind == "auto" and not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists())


async def _broker(stack: contextlib.AsyncExitStack, kind: str) -> str:
    """A broker for the run: a private Mosquitto when the machine has one (``auto``, ``mosquitto``), else
    (or with ``embedded``) the embedded amqtt broker, which carries a few hundred messages a second."""
    if kind in ("auto", "mosquitto"):
        try:
            mosquitto = Mosquitto(own_session=True).start()
        except BrokerStartError:
            if kind == "mosquitto":
                raise
        else:
            stack.callback(mosquitto.__exit__, None, None, None)
            log.info("broker: a private mosquitto on %s", mosquitto.url)
            return mosquitto.url
    url: str = await stack.enter_async_context(embedded_broker())
    log.info("broker: the embedded broker on %s", url)
    return url


async def _physics(site: Site, clock: ScaledClock, duration: float, view: LiveView, meter: Pro3em,
                   plug: BoilerPlug | None, observe: Observer | None, refresh: float,
                   stop: asyncio.Event | None = None) -> None:
    scenario = site.scenario
    step = scenario.timing.step
    #: The loop wakes up twice per meter interval; the physics takes steps of ``step`` in between.
    wake = max(step, scenario.timing.meter_interval / 2)
    limit = scenario.grid.fuse
    next_meter = 0.0
    shown = 0.0
    while site.t < duration and not (stop is not None and stop.is_set()):
        await clock.sleep(wake)
        if stop is not None and stop.is_set():
            break
        target = min(clock.monotonic(), duration)
        while site.t < target - 1e-9:
            dt = min(step, target - site.t)
            now: datetime = site.now
            for device in view.devices.values():
                device.control(now)
            state = site.step(dt)
            view.recorder.step(state, dt)
            view.recorder.sample(state, limit)
        if site.t >= next_meter:
            next_meter = site.t + scenario.timing.meter_interval
            await meter.publish(site.state)
        if plug is not None:
            await plug.report()
        if observe is not None and time.monotonic() - shown >= refresh:
            shown = time.monotonic()
            observe(view)
    if observe is not None:
        observe(view)


def _collect_cancelled_publishes() -> None:
    """Collect now what the stopped services left behind: a ``gather`` of publishes cancelled with its
    service is reported by asyncio ("exception was never retrieved") whenever the garbage collector gets to
    it — at a random later moment, even inside ``compile()``, where logging from a finalizer can upset
    CPython 3.11. Collected here, on purpose, with that one expected message kept out of the log."""
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)
    try:
        gc.collect()
    finally:
        asyncio_log.setLevel(level)


def _services_ended(task: asyncio.Task[None], view: LiveView) -> None:
    """The services stopped before the run did: a config error or a crash that took them all down."""
    if task.cancelled():
        return
    exc = task.exception()
    causes = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else [exc]
    for cause in causes:
        line = f"the services stopped: {type(cause).__name__}: {cause}"
        log.error(line)
        view.missing.append(line)


def _observe(runtime: Runtime, topics: Topics, site: str, view: LiveView) -> None:
    @runtime.route(topics.load_filter(Leaf.SETPOINT), Setpoint)
    async def on_setpoint(msg: Incoming[Setpoint]) -> None:
        if msg.payload.site == site and not msg.retain:
            view.recorder.setpoint(msg.payload)
            if msg.payload.reason is Reason.GRID_OPERATOR_LIMIT:
                view.dimmed.append(msg.payload)
            if msg.payload.reason is Reason.PHASE_SWITCH:
                view.phase_switches.append(msg.payload)
            if msg.payload.current > 0 and msg.payload.phase_count is not None:
                view.switched_charging.append(msg.payload)

    @runtime.route(topics.load_filter(Leaf.STATE), LoadState)
    async def on_state(msg: Incoming[LoadState]) -> None:
        if msg.payload.site == site:
            view.load_states[msg.payload.load] = msg.payload

    @runtime.route(topics.load_filter(Leaf.PLAN), LoadPlan)
    async def on_plan(msg: Incoming[LoadPlan]) -> None:
        if msg.payload.site == site:
            view.plans[msg.payload.load] = msg.payload

    @runtime.route(topics.decision(site), SiteDecision)
    async def on_decision(msg: Incoming[SiteDecision]) -> None:
        view.decision = msg.payload

    @runtime.route(topics.site_settings(site), SiteSettings)
    async def on_settings(msg: Incoming[SiteSettings]) -> None:
        view.settings = msg.payload

    for name in SERVICES:
        def make(service: str) -> Callable[[RawIncoming], Any]:
            async def on_availability(msg: RawIncoming) -> None:
                view.services[service] = msg.payload.decode("utf-8", "replace")
            return on_availability

        runtime.raw_route(topics.service_availability(name))(make(name))


__all__ = ["LiveView", "RunResult", "Wiring", "run_scenario"]
