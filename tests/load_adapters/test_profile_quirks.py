"""The live limit binds and lapses on every kind of charger: the real gateway, the real load adapters and the
simulator's chargers (which keep their profiles as OCPP 1.6 §3.13 / 2.0.1 K08 say, each with one quirk of
real devices) over real websockets and a real Mosquitto, on one clock running ``SPEED`` times real time.

Each car charges for 10 minutes, then its load is paused (a Setpoint of 0 A published on the load's
setpoint topic, as the allocator would): the charger's composite limit must stay at 0 A through several
renewals. Then the adapters stop and nothing else talks to the chargers: each must offer its baseline
within the profile's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.load_adapters.adapter import SERVICE
from services.load_adapters.service import LoadAdapters, LoadAdaptersConfig
from services.ocpp_gateway.config import GatewayConfig
from services.ocpp_gateway.gateway import Gateway
from services.site_simulator.charge_point import ChargerDevice
from services.site_simulator.scenario import ChargerSpec, EvSpec
from services.site_simulator.site import ChargerPlug
from shared.clock import ScaledClock
from shared.models import Mode, Reason, Setpoint
from shared.mqtt import Runtime, serving
from shared.probe import Probe

from .conftest import T

SPEED = 60.0
LIFETIME = 90.0
BASELINE = 6.0
SESSION = 600.0  # the car charges this long before the pause


@dataclass(frozen=True)
class Quirk:
    """A simulated charger (its scenario options) and what its installer tells the adapter about it."""

    name: str
    charger: dict[str, Any]
    adapter: dict[str, Any]


QUIRKS = [
    Quirk("standard", {}, {}),
    Quirk("standard-201", {"ocpp": "2.0.1"}, {}),
    Quirk("relative-from-receipt", {"relative_from": "receipt"}, {}),
    Quirk("clock-ahead", {"clock_skew": 600.0}, {}),
    Quirk("clock-behind", {"clock_skew": -600.0}, {}),
    Quirk("clock-ahead-201", {"ocpp": "2.0.1", "clock_skew": 600.0}, {}),
    Quirk("stack-level-zero", {"stack_level_zero_only": True}, {"stack_level_zero_only": True}),
    Quirk("watts-only", {"watts_only": True}, {}),
    Quirk("relative-only", {"relative_only": True}, {"relative_only": True}),
    Quirk("relative-only-receipt", {"relative_only": True, "relative_from": "receipt"},
          {"relative_only": True, "relative_start": "receipt"}),
]


def setpoint(site: str, load: str, clock: ScaledClock, current: float) -> Setpoint:
    return Setpoint(site=site, load=load, on=current > 0, current=current, phases=[], mode=Mode.STANDARD,
                    reason=Reason.OK, valid_until=clock.now() + timedelta(hours=2))


@contextlib.asynccontextmanager
async def fleet(mqtt_url: str, site: str, clock: ScaledClock) -> AsyncIterator[tuple[dict[str, ChargerDevice],
                                                                                    LoadAdapters]]:
    """The gateway, a charger per quirk (plugged in, a car charging) and the adapters, all on ``clock``."""
    ids = {q.name: f"cp-{q.name}" for q in QUIRKS}
    config = GatewayConfig(host="127.0.0.1", port=0, default_site=site,
                           chargers={i.upper().replace("-", "_"): {"site": site, "auth": "none"}
                                     for i in ids.values()})
    gw_runtime = Runtime("ocpp-gateway", mqtt_url, T)
    gateway = Gateway(config, gw_runtime, clock)
    start = clock.now()
    devices: dict[str, ChargerDevice] = {}
    loads = [{"type": "ocpp_charger", "site": site, "id": q.name, "charger": ids[q.name], "connector": 1,
              "lifetime": LIFETIME, "renew_every": 30.0, "command_timeout": 60.0, "tick": 1.0,
              "baseline_current": BASELINE, **q.adapter} for q in QUIRKS]
    ad_runtime = Runtime(SERVICE, mqtt_url, T)
    adapters = LoadAdapters(LoadAdaptersConfig.model_validate({"loads": loads}), ad_runtime, clock)
    tasks: list[asyncio.Task[Any]] = []

    async def physics() -> None:
        last = clock.now()
        while True:
            await clock.sleep(1.0)
            now = clock.now()
            dt = (now - last).total_seconds()
            last = now
            for device in devices.values():
                device.control(now)
                device.plug.step(now, (now - start).total_seconds(), dt, 230.0)

    async with serving(gw_runtime), gateway.running():
        for q in QUIRKS:
            spec = ChargerSpec(id=ids[q.name], max_current=16.0, **q.charger,
                               ev=EvSpec(arrives=start.time().replace(second=0, microsecond=0), lag=(0.0, 0.0)))
            device = ChargerDevice(ChargerPlug(spec, start, seed=1), gateway.url, clock, meter_interval=10.0)
            device.check_interval = 2.0
            devices[q.name] = device
            tasks.append(asyncio.ensure_future(device.run()))
        tasks.append(asyncio.ensure_future(physics()))
        try:
            async with serving(ad_runtime):
                try:
                    yield devices, adapters
                finally:
                    await adapters.stop()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task


async def test_a_pause_binds_and_the_baseline_returns_within_the_lifetime_on_every_charger(
        mqtt_url: str, probe: Probe, site_id: str) -> None:
    site = site_id
    clock = ScaledClock(datetime.now(UTC).replace(hour=12), SPEED)
    await probe.subscribe(T.errors(site))
    async with fleet(mqtt_url, site, clock) as (devices, adapters):
        for q in QUIRKS:
            await probe.publish(T.setpoint(site, q.name), setpoint(site, q.name, clock, 16.0))
        await clock.sleep(SESSION)
        charging = {name: d.plug.current for name, d in devices.items()}
        assert all(amps > 15.0 for amps in charging.values()), charging
        assert all(d.transaction_id is not None for d in devices.values())

        # (a) 10 minutes into the session the car is paused: 0 A holds, through renewals
        for q in QUIRKS:
            await probe.publish(T.setpoint(site, q.name), setpoint(site, q.name, clock, 0.0))
        await clock.sleep(30.0)
        held: dict[str, set[float]] = {q.name: set() for q in QUIRKS}
        for _ in range(24):  # 4 lifetimes
            await clock.sleep(15.0)
            for name, device in devices.items():
                held[name].add(device.control(clock.now()))
        assert {name: limits for name, limits in held.items() if limits != {0.0}} == {}

        # the chargers whose clock is 10 minutes off were reported, each once
        clocks = sorted((m.json()["topic"].split("/")[-2], int(m.json()["message"].split()[4]))
                        for m in probe.on(T.errors(site)) if m.json()["error"] == "charger_clock")
        assert [load for load, _ in clocks] == ["clock-ahead", "clock-ahead-201", "clock-behind"], clocks
        assert all(abs(abs(skew) - 600) < 10 for _, skew in clocks), clocks

        # (b) the adapters stop (and no allocator runs): every charger falls back to its baseline in time
        await adapters.stop()
        stopped = clock.now()
        await clock.sleep(LIFETIME + 15.0)
        offered = {name: round(d.control(clock.now()), 1) for name, d in devices.items()}
        assert offered == dict.fromkeys(devices, BASELINE), f"{(clock.now() - stopped).total_seconds():.0f} s after"
