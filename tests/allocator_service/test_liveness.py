"""What the allocator counts on, judged on its own clock: a load that has gone silent, a load whose adapter
service died, readings and states stamped in the future (issue 13, findings 3 and 4)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import yaml

from services.allocator.service import running
from shared import acl
from shared.broker import Mosquitto
from shared.config import AmpmqConfig
from shared.models import ErrorReport, LoadStatus, Reason, Setpoint
from shared.probe import Probe, Received
from shared.topics import Topics

from .conftest import FAST_TIMERS, behind_generated_acl, evse, measurement, now

ROOT = Path(__file__).resolve().parents[2]


def sp(msg: Received) -> Setpoint:
    return msg.model(Setpoint)


def reports(watch: Probe, topics: Topics, site: str, error: str, after: int = 0) -> list[ErrorReport]:
    found = [m.model(ErrorReport) for m in watch.on(topics.errors(site), after=after)]
    return [r for r in found if r.error == error]


async def _feed_meter(watch: Probe, topics: Topics, site: str, amps: float = 2.0) -> None:
    """A live meter: a fresh grid reading every 0.1 s."""
    while True:
        await watch.publish(topics.measurement(site), measurement(site, amps), retain=True)
        await asyncio.sleep(0.1)


async def test_a_load_that_stops_reporting_goes_unavailable_and_says_why(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    # 13.3: a claim is trusted only while it is fresh. The state comes once; nothing arrives for the car after.
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}}, load_stale_after=1.0)
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car", draw=16.0), retain=True)
    meter = asyncio.create_task(_feed_meter(watch, topics, site_id))
    try:
        async with running(config):
            first = sp(await watch.expect(topics.setpoint(site_id, "car")))
            assert first.reason is not Reason.UNAVAILABLE
            # within the stale age and one refresh (0.5 s), by the refresh alone: nothing else arrives for it
            gone = sp(await watch.expect(topics.setpoint(site_id, "car"), timeout=5,
                                         where=lambda m: sp(m).reason is Reason.UNAVAILABLE))
            assert gone.current == 0.0
            said = await watch.expect(topics.errors(site_id), where=lambda m: m.json()["error"] == "load_stale")
            assert "s old" in said.model(ErrorReport).message
            # a fresh state brings it back
            mark = watch.mark()
            await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
            back = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                         where=lambda m: sp(m).reason is not Reason.UNAVAILABLE))
            assert back.current == 16.0
    finally:
        meter.cancel()
    assert len(reports(watch, topics, site_id, "load_stale")) == 1  # said once, not every decision


async def test_a_retained_state_an_hour_old_is_not_counted_on(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    # 13.3: "a load state 3 600 s old saying 16 A, while the car draws 0, hands 16 A to others"
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    old = evse(site_id, "car", draw=16.0).model_copy(update={"ts": now() - timedelta(hours=1)})
    await watch.publish(topics.load_state(site_id, "car"), old, retain=True)
    await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
    async with running(config):
        first = sp(await watch.expect(topics.setpoint(site_id, "car")))
    assert (first.current, first.reason) == (0.0, Reason.UNAVAILABLE)


def _adapters_config(path: Path, url: str, topics: Topics, site: str, device: str) -> None:
    path.write_text(yaml.safe_dump({"root": topics.root, "mqtt_url": url, "log_level": "WARNING", "load_adapters": {
        "loads": [{"type": "tasmota_plug", "site": site, "id": "heater", "topic": device, "rated_power": 2000.0,
                   "tick": 0.1, "state_interval": 1.0, "startup_grace": 0.3}]}}))


async def test_killing_the_load_adapters_service_makes_its_loads_unavailable(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig], mqtt_url: str,
    tmp_path: Path
) -> None:
    # 13.3: after `kill -9` of the load adapters the loads' retained state and availability still say
    # active/online; only the service's Last Will tells. A real load-adapters process, killed.
    device = f"plug-{site_id}"
    config_file = tmp_path / "ampmq.yaml"
    _adapters_config(config_file, mqtt_url, topics, site_id, device)
    await watch.subscribe(f"cmnd/{device}/#")
    service = topics.service_availability("load-adapters")
    env = {**os.environ, "AMPMQ_CONFIG": str(config_file)}
    proc = subprocess.Popen([sys.executable, "-m", "services.load_adapters"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meter = asyncio.create_task(_feed_meter(watch, topics, site_id))
    try:
        await watch.expect(service, where=lambda m: m.text == "online", timeout=30)
        await watch.publish(f"stat/{device}/POWER", "OFF")  # the plug speaks: its adapter counts it available
        await watch.expect(topics.load_state(site_id, "heater"), timeout=10,
                           where=lambda m: m.json()["status"] == LoadStatus.ACTIVE.value)
        async with running(make_config(sites={site_id: {"timers": FAST_TIMERS}})):
            alive = sp(await watch.expect(topics.setpoint(site_id, "heater"), timeout=10,
                                          where=lambda m: sp(m).on))
            assert alive.reason is Reason.OK
            mark = watch.mark()
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
            await watch.expect(service, after=mark, where=lambda m: m.text == "offline", timeout=10)
            gone = sp(await watch.expect(topics.setpoint(site_id, "heater"), after=mark, timeout=5,
                                         where=lambda m: sp(m).reason is Reason.UNAVAILABLE))
            assert not gone.on
            said = (await watch.expect(topics.errors(site_id), after=mark,
                                       where=lambda m: m.json()["error"] == "load_service_offline")).model(ErrorReport)
            assert "load-adapters" in said.message and "heater" in said.message
        # what the dead service left retained still says active and online: the allocator did not trust it
        assert watch.on(topics.load_state(site_id, "heater"))[-1].json()["status"] == "active"
    finally:
        meter.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


async def test_a_grid_reading_from_the_future_is_reported_and_not_fresh(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    # 13.4: a reading stamped an hour ahead, then the meter dies: the car must not keep its 16 A for an hour
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "stale_after": 1.0}}})
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
    async with running(config):
        await watch.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 16.0)
        mark = watch.mark()
        ahead = measurement(site_id, 2.0, at=now() + timedelta(hours=1))
        for _ in range(3):  # the same clock error again and again: one report, not a flood
            await watch.publish(topics.measurement(site_id), ahead, retain=True)
        stale = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=5,
                                      where=lambda m: sp(m).reason is Reason.STALE_DATA))
        assert stale.current == 0.0
        said = (await watch.expect(topics.errors(site_id), after=mark,
                                   where=lambda m: m.json()["error"] == "future_timestamp")).model(ErrorReport)
        assert "grid_current" in said.message and "3600 s ahead" in said.message
        await asyncio.sleep(0.3)
    assert len(reports(watch, topics, site_id, "future_timestamp", after=mark)) == 1


async def test_a_reading_a_little_ahead_counts_from_when_it_arrived(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    # within the tolerance a reading is used, but its age counts from its arrival, not from its stamp: stamped
    # 30 s ahead, it would stay fresh for 31 s by its own clock; it must go stale a second after it came
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "stale_after": 1.0}}}, future_tolerance=60.0)
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    async with running(config):
        mark = watch.mark()
        ahead = measurement(site_id, 2.0, at=now() + timedelta(seconds=30))
        await watch.publish(topics.measurement(site_id), ahead, retain=True)
        await watch.expect(topics.setpoint(site_id, "car"), after=mark, where=lambda m: sp(m).current == 16.0)
        await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=5,
                           where=lambda m: sp(m).reason is Reason.STALE_DATA)
    assert not reports(watch, topics, site_id, "future_timestamp", after=mark)


async def test_a_load_state_from_the_future_is_reported_and_the_load_unavailable(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    ahead = evse(site_id, "car", draw=16.0).model_copy(update={"ts": now() + timedelta(hours=1)})
    await watch.publish(topics.load_state(site_id, "car"), ahead, retain=True)
    await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
    async with running(config):
        first = sp(await watch.expect(topics.setpoint(site_id, "car")))
        assert (first.current, first.reason) == (0.0, Reason.UNAVAILABLE)
        said = (await watch.expect(topics.errors(site_id),
                                   where=lambda m: m.json()["error"] == "future_timestamp")).model(ErrorReport)
        assert "load car" in said.message


async def test_the_load_adapters_last_will_reaches_the_allocator_behind_the_generated_acl(
    own_mosquitto: type[Mosquitto], site_id: str
) -> None:
    # the shipped ACL must let the allocator read the adapters' availability, or a dead adapter goes unseen
    topics = Topics()
    broker, config = behind_generated_acl(own_mosquitto, site_id)
    async with (Probe(broker.url_for("meter-bridge")) as meter, Probe(broker.url_for("load-adapters")) as adapter,
                Probe(broker.url_for(acl.OPERATOR)) as operator):
        await operator.subscribe(topics.site_all(site_id))
        await adapter.publish(topics.service_availability("load-adapters"), "online", retain=True)
        await adapter.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
        await meter.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
        async with running(config):
            await operator.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 16.0)
            await adapter.publish(topics.service_availability("load-adapters"), "offline", retain=True)
            await operator.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).reason is Reason.UNAVAILABLE)
