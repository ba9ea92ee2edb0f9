"""A shortened chaos day on the deployment as processes: nothing lost, no breaker trips, every cut in time.

The broker runs the project's own Mosquitto conf (docker/mosquitto/mosquitto.conf: persistence on every
change); each service is its own process (``python -m services.<name>``), as compose runs them. The site is
the simulator's physics in this process, on the real clock: a house, a B-curve 3 × 25 A main breaker, and a
car on a simulated OCPP 1.6 charger (a real websocket client of the gateway) that follows its charger's
offered current with a lag; a Shelly Pro 3EM reports the grid every second.

Under that running site the test kills (SIGKILL) and restarts the broker and then each service. Right as each
is back, a 20 A appliance starts on phase B while the car draws 16 A: the cut must reach the charger (its
composite limit) within 10 s. Then a power loss: a setting is changed, everything is killed at once and
started again, and the setting must still be there. Over the whole run the breaker model must not trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.site_simulator.charge_point import ChargerDevice
from services.site_simulator.scenario import Scenario
from services.site_simulator.shelly import Pro3em
from services.site_simulator.site import Site
from shared.broker import free_port, wait_for_port
from shared.clock import SYSTEM_CLOCK
from shared.models import LoadSettings
from shared.mqtt import Runtime
from shared.probe import Probe
from shared.topics import Topics
from tests.project_broker import project_broker_conf

ROOT = Path(__file__).resolve().parents[2]
SITE = "home"
TOPICS = Topics("chaos")
#: The whole cut: allocator, adapter, gateway and the charger's own schedule (the EV follows after it).
CUT_WITHIN = 10.0
#: The appliance that overloads phase B while the car draws 16 A (house B 2 A + 20 A + car 16 A = 38 A on 25 A).
STEP_W = 20 * 230.0
SERVICES = {"allocator": "services.allocator", "ocpp-gateway": "services.ocpp_gateway",
            "load-adapters": "services.load_adapters", "meter-bridge": "services.meter_bridge"}


class SteppedHousehold:
    """The scenario's household plus an appliance the test switches (W per phase)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.extra: dict[str, float] = {}

    def power(self, now: datetime) -> dict[str, float]:
        power = dict(self.inner.power(now))
        for phase, watts in self.extra.items():
            power[phase] = power.get(phase, 0.0) + watts
        return power

    def running(self, now: datetime) -> list[str]:
        return [*self.inner.running(now), *(["test appliance"] if self.extra else [])]


@dataclass
class Deployment:
    """The broker and the four services as processes, configured as a home with one charger."""

    folder: Path
    broker_port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    broker: subprocess.Popen[bytes] | None = None
    services: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.broker_port}"

    def write_config(self) -> Path:
        config = {
            "mqtt_url": self.url, "root": TOPICS.root, "log_level": "WARNING",
            "ocpp_gateway": {"host": "127.0.0.1", "port": self.gateway_port, "default_site": SITE,
                             "chargers": {"CP_1": {"site": SITE, "auth": "none"}}},  # simulated, on loopback
            "meter_bridge": {"sites": {SITE: {"stale_after": 3.0, "sources": [
                {"id": "grid", "driver": "shelly", "prefix": "chaos-pro3em"}]}}},
            "load_adapters": {"loads": [{"type": "ocpp_charger", "site": SITE, "id": "car", "charger": "cp-1",
                                         "min_current": 6, "max_current": 16, "tick": 0.5}]},
            "allocator": {"settle": 0.5, "sites": {SITE: {"fuse_limit": 25, "margin": 1, "timers": {
                "min_interval": 0.2, "refresh": 2.0, "stale_after": 3.0, "min_run": 0, "min_pause": 0,
                "grace": 0, "ramp_step": 100}}}},
        }
        path = self.folder / "ampmq.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start_broker(self) -> None:
        conf = project_broker_conf(self.folder, self.broker_port)
        binary = "mosquitto" if subprocess.run(["which", "mosquitto"], capture_output=True).returncode == 0 \
            else "/usr/sbin/mosquitto"
        self.broker = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.broker_port)

    def start_service(self, name: str) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AMPMQ_")},
               "AMPMQ_CONFIG": str(self.folder / "ampmq.yaml")}
        log = (self.folder / f"{name}.log").open("ab")
        self.services[name] = subprocess.Popen([sys.executable, "-m", SERVICES[name]], cwd=ROOT, env=env,
                                               stdout=log, stderr=subprocess.STDOUT)

    @staticmethod
    def kill(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.services.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.services.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            self.kill(proc)
        self.kill(self.broker)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.folder.glob("*.log"))


@dataclass
class LiveSite:
    """The site's physics on the real clock, its charger and its meter."""

    site: Site
    household: SteppedHousehold
    charger: ChargerDevice
    meter: Pro3em
    runtime: Runtime

    @property
    def offered(self) -> float:
        return self.charger.plug.offered

    @property
    def trips(self) -> int:
        return self.site.fuse.trips

    async def physics(self) -> None:
        step, next_meter = 0.1, 0.0
        last = time.monotonic()
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            dt, last = now - last, now
            self.charger.control(self.site.now)
            self.site.step(dt)
            if self.site.t >= next_meter:
                next_meter = self.site.t + 1.0
                await self.meter.publish(self.site.state)


@contextlib.asynccontextmanager
async def live_site(deployment: Deployment) -> AsyncIterator[LiveSite]:
    start = datetime.now(UTC).replace(microsecond=0)
    scenario = Scenario.model_validate({
        "name": "chaos", "site": SITE, "start": start, "duration": 3600, "speed": 1,
        "grid": {"fuse": 25, "curve": "B", "margin": 1},
        "household": {"base_power": [460, 460, 460], "noise": 0.0},
        "chargers": [{"id": "cp-1", "ocpp": "1.6", "max_current": 16, "ev": {
            "capacity": 200_000, "soc": 20, "max_current": 16,
            "arrives": start.time().replace(second=0).isoformat(timespec="minutes")}}],
    })
    site = Site(scenario)
    household = SteppedHousehold(site.household)
    site.household = household  # type: ignore[assignment]
    runtime = Runtime("site-simulator", deployment.url, TOPICS, backoff_initial=0.1)
    charger = ChargerDevice(site.chargers["cp-1"], f"ws://127.0.0.1:{deployment.gateway_port}", SYSTEM_CLOCK,
                            meter_interval=2.0, physics_now=lambda: site.now)
    charger.check_interval = 1.0
    live = LiveSite(site, household, charger, Pro3em(runtime, "chaos-pro3em"), runtime)
    tasks = [asyncio.ensure_future(runtime.run()), asyncio.ensure_future(charger.run()),
             asyncio.ensure_future(live.physics())]
    try:
        yield live
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def until(condition: Any, timeout: float, what: str, deployment: Deployment) -> float:
    """Wait for ``condition()``; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not within {timeout:g} s\n{deployment.logs()}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def online(probe: Probe, service: str, after: int) -> None:
    """The service said ``online`` after ``after`` (its Last Will said ``offline`` in between)."""
    topic = TOPICS.service_availability(service)
    await probe.expect(topic, after=after, where=lambda m: m.text == "offline", timeout=20)
    await probe.expect(topic, after=after, where=lambda m: m.text == "online", timeout=20)


async def overload_is_cut(live: LiveSite, deployment: Deployment, after: str) -> float:
    """Start the 20 A appliance on B with the car at 16 A; the seconds until the charger offers what fits."""
    live.household.extra = {"B": STEP_W}
    try:
        took = await until(lambda: live.offered < 2.0, 30.0, f"the cut after {after}", deployment)
    finally:
        live.household.extra = {}
    return took


async def car_charging(live: LiveSite, deployment: Deployment, what: str) -> None:
    await until(lambda: live.offered >= 15.0 and live.charger.plug.current >= 15.0, 45.0, what, deployment)


async def test_a_chaos_day_loses_nothing_and_trips_nothing(tmp_path: Path) -> None:
    deployment = Deployment(tmp_path)
    deployment.write_config()
    cuts: dict[str, float] = {}
    try:
        deployment.start_broker()
        for name in SERVICES:
            deployment.start_service(name)
        async with live_site(deployment) as live:
            await car_charging(live, deployment, "the car charging at 16 A after start")

            # the broker dies and comes back; the overload starts as it returns
            deployment.kill(deployment.broker)
            await asyncio.sleep(3.0)
            deployment.start_broker()
            cuts["broker"] = await overload_is_cut(live, deployment, "a broker restart")

            # each service dies and comes back (a client of the broker watches it go and return)
            for name in SERVICES:
                await car_charging(live, deployment, f"the car charging again before killing {name}")
                async with Probe(deployment.url) as probe:
                    await probe.subscribe(TOPICS.service_availability(name))
                    mark = probe.mark()
                    deployment.kill(deployment.services[name])
                    deployment.start_service(name)
                    await online(probe, name, mark)
                cuts[name] = await overload_is_cut(live, deployment, f"a {name} restart")

            # a power loss: a setting changed, everything gone at once, everything back
            async with Probe(deployment.url) as probe:
                await probe.subscribe(TOPICS.load_settings(SITE, "car"))
                mark = probe.mark()
                await probe.publish(TOPICS.load_settings_set(SITE, "car"), '{"max_current": 10.0}')
                await probe.expect(TOPICS.load_settings(SITE, "car"), after=mark,
                                   where=lambda m: m.json().get("max_current") == 10.0)
            await asyncio.sleep(0.5)
            for proc in [deployment.broker, *deployment.services.values()]:
                deployment.kill(proc)
            deployment.start_broker()
            for name in SERVICES:
                deployment.start_service(name)
            async with Probe(deployment.url) as after:
                await after.subscribe(TOPICS.load_settings(SITE, "car"))
                kept = (await after.expect(TOPICS.load_settings(SITE, "car"), timeout=10)).model(LoadSettings)
                assert kept.max_current == 10.0
            await until(lambda: 6.0 <= live.offered <= 10.0, 45.0, "the car at its 10 A setting after the power loss",
                        deployment)
            assert live.trips == 0, live.site.fuse.summary()
        slow = {what: took for what, took in cuts.items() if took > CUT_WITHIN}
        print(f"cuts at the charger (s after the service or broker was back): "
              f"{ {k: round(v, 2) for k, v in cuts.items()} }")
        assert not slow, f"cuts slower than {CUT_WITHIN:g} s: {slow}\n{deployment.logs()}"
    finally:
        deployment.stop_all()
