"""The allocator service against the real Mosquitto: decisions, settings, timers, restarts, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from services.allocator.service import running
from shared import acl
from shared.broker import Mosquitto
from shared.clock import ScaledClock
from shared.config import AmpmqConfig
from shared.models import (
    ErrorReport,
    LoadSettings,
    Phase,
    Reason,
    Setpoint,
    SiteDecision,
    SiteSettings,
    Timers,
)
from shared.probe import Probe, Received
from shared.topics import Topics

from .conftest import FAST_TIMERS, behind_generated_acl, discovery_prefix, evse, measurement, now


def sp(msg: Received) -> Setpoint:
    return msg.model(Setpoint)


async def publish_car(watch: Probe, topics: Topics, site: str, grid: float, **car: Any) -> None:
    """Retain the car's state and a grid reading of ``grid`` A on every phase: where most tests start."""
    await watch.publish(topics.load_state(site, "car"), evse(site, "car", **car), retain=True)
    await watch.publish(topics.measurement(site), measurement(site, grid), retain=True)


async def car_at_full_speed(watch: Probe, topics: Topics, site: str, after: int = 0) -> Received:
    """The first setpoint (from index ``after`` on) that gives the car its full 16 A."""
    return await watch.expect(topics.setpoint(site, "car"), after=after, where=lambda m: sp(m).current == 16.0)


async def test_publishes_a_setpoint_per_load_and_a_site_decision(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"fuse_limit": 25.0, "margin": 1.0, "timers": FAST_TIMERS}})
    await publish_car(watch, topics, site_id, 10.0)
    async with running(config):
        setpoint = sp(await watch.expect(topics.setpoint(site_id, "car")))
        # house 10 A + 16 A would pass 24 A: the car gets what is left below the fuse minus the margin
        assert (setpoint.current, setpoint.reason) == (14.0, Reason.FUSE_LIMIT)
        assert setpoint.valid_until == setpoint.ts + timedelta(seconds=FAST_TIMERS["setpoint_lifetime"])
        decision = (await watch.expect(topics.decision(site_id))).model(SiteDecision)
        assert decision.site == site_id and not decision.stale


async def test_mode_change_over_set_takes_effect_in_the_next_decision(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    await publish_car(watch, topics, site_id, 2.0)
    async with running(config):
        await car_at_full_speed(watch, topics, site_id)
        mark = watch.mark()
        await watch.publish(topics.load_settings_set(site_id, "car"), {"mode": "off", "transaction": "t-1"})
        settings = await watch.expect(topics.load_settings(site_id, "car"), after=mark)
        assert settings.retain is False and settings.json()["mode"] == "off"
        assert settings.json()["transaction"] == "t-1"
        first_after = sp(await watch.expect(
            topics.setpoint(site_id, "car"), after=watch.messages.index(settings)))
        assert (first_after.current, first_after.reason) == (0.0, Reason.OFF)


async def _hold_measurement(watch: Probe, topics: Topics, site: str, house: Callable[[], float],
                            draw: Callable[[], float]) -> None:
    """Keep publishing a fresh grid reading: the house's own current plus what the car draws."""
    while True:
        await watch.publish(topics.measurement(site), measurement(site, house() + draw()), retain=True)
        await asyncio.sleep(0.1)


async def test_a_paused_load_does_not_restart_before_min_pause(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    min_pause = 1.5
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "min_pause": min_pause}}})
    await publish_car(watch, topics, site_id, 5.0 + 16.0, draw=16.0)  # charging before the allocator starts
    house = {"A": 5.0}
    async with running(config):
        feeder = asyncio.create_task(_hold_measurement(watch, topics, site_id, lambda: house["A"], lambda: 16.0))
        try:
            await car_at_full_speed(watch, topics, site_id)
            mark = watch.mark()
            house["A"] = 30.0  # the house alone now takes more than the fuse: the car must pause
            paused = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                           where=lambda m: sp(m).current == 0.0))
            assert paused.paused_since is not None
            mark = watch.mark()
            house["A"] = 5.0  # room again at once, but the car waits out min_pause
            resumed = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=10,
                                            where=lambda m: sp(m).current > 0))
        finally:
            feeder.cancel()
        held_until = paused.paused_since + timedelta(seconds=min_pause)
        assert resumed.ts >= held_until
        between = [sp(m) for m in watch.on(topics.setpoint(site_id, "car"), after=mark)]
        waiting = [s for s in between if s.ts < held_until]
        assert waiting, "no decision was made while the pause held"
        assert all(s.current == 0.0 for s in waiting)
        assert any(s.reason is Reason.MIN_PAUSE for s in waiting)


async def test_an_overload_in_a_new_measurement_cuts_in_the_next_setpoint(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    # refresh is long here: the only decision after the reading is the one the reading triggers
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "refresh": 30.0, "min_run": 600.0,
                                                     "grace": 600.0}}})
    await publish_car(watch, topics, site_id, 20.0, draw=16.0)
    async with running(config):
        await car_at_full_speed(watch, topics, site_id)
        await asyncio.sleep(0.3)  # nothing in flight
        mark = watch.mark()
        # phase A: the house now takes 17 A of its own, so the car may have at most 25 - 1 - 17 = 7 A
        reading = measurement(site_id, {Phase.A: 33.0, Phase.B: 20.0, Phase.C: 20.0})
        await watch.publish(topics.measurement(site_id), reading, retain=True)
        cut = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark))
        assert cut.current <= 7.0
        assert cut.reason is Reason.FUSE_LIMIT


async def test_an_overload_skips_the_coalescing_window(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    # min_interval is a minute: an ordinary change right after a decision waits for it, an overload does not
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "min_interval": 60.0, "refresh": 120.0,
                                                     "min_run": 600.0, "grace": 600.0}}})
    await publish_car(watch, topics, site_id, 20.0, draw=16.0)
    async with running(config):
        await car_at_full_speed(watch, topics, site_id)
        mark = watch.mark()
        await watch.publish(topics.measurement(site_id), measurement(site_id, 21.0), retain=True)
        await asyncio.sleep(1.0)
        assert watch.on(topics.setpoint(site_id, "car"), after=mark) == [], "a plain change waits min_interval"
        # phase A over 25 - 1 A: the cut goes out at once, within the minute the window still has to run
        await watch.publish(topics.measurement(site_id), measurement(site_id, {Phase.A: 33.0, Phase.B: 20.0,
                                                                               Phase.C: 20.0}), retain=True)
        cut = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=10))
        assert cut.current <= 7.0 and cut.reason is Reason.FUSE_LIMIT


async def test_a_restarted_instance_keeps_settings_and_timers(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    min_pause = 2.5
    config = make_config(sites={site_id: {"fuse_limit": 25.0, "timers": {**FAST_TIMERS, "min_pause": min_pause}}})
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    house = {"A": 5.0}
    feeder = asyncio.create_task(_hold_measurement(watch, topics, site_id, lambda: house["A"], lambda: 0.0))
    try:
        async with running(config):
            await car_at_full_speed(watch, topics, site_id)
            await watch.publish(topics.site_settings_set(site_id), {"fuse_limit": 20.0})
            await watch.expect(topics.site_settings(site_id), where=lambda m: m.json()["fuse_limit"] == 20.0)
            await watch.publish(topics.load_settings_set(site_id, "car"), {"name": "garage"})
            await watch.expect(topics.load_settings(site_id, "car"))
            mark = watch.mark()
            house["A"] = 25.0
            paused = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                           where=lambda m: sp(m).current == 0.0))
            house["A"] = 5.0
            await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                               where=lambda m: sp(m).reason is Reason.MIN_PAUSE)
        # the first instance is gone mid-pause; a new one reads its memory and settings back
        mark = watch.mark()
        async with running(config):
            resumed = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=10,
                                            where=lambda m: sp(m).current > 0))
            # a further /set merges into the settings restored from the broker, not into the defaults
            await watch.publish(topics.site_settings_set(site_id), {"margin": 2.0})
            await watch.publish(topics.load_settings_set(site_id, "car"), {"priority": 2})
            site = (await watch.expect(topics.site_settings(site_id), after=mark)).model(SiteSettings)
            car = (await watch.expect(topics.load_settings(site_id, "car"), after=mark)).model(LoadSettings)
    finally:
        feeder.cancel()
    assert (site.fuse_limit, site.margin) == (20.0, 2.0)
    assert (car.name, car.priority) == ("garage", 2)
    assert paused.paused_since is not None
    held_until = paused.paused_since + timedelta(seconds=min_pause)
    after_restart = [sp(m) for m in watch.on(topics.setpoint(site_id, "car"), after=mark)]
    assert any(s.ts < held_until for s in after_restart), "the new instance decided nothing during the pause"
    for s in after_restart:
        if s.ts < held_until:
            assert s.current == 0.0 and s.paused_since == paused.paused_since
    assert resumed.ts >= held_until
    # the settings set on the first instance hold: 20 A fuse - 1 A margin - 5 A house
    assert resumed.current == 14.0


async def test_retained_settings_win_over_configured_defaults(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"fuse_limit": 32.0, "timers": FAST_TIMERS}})
    retained = SiteSettings(site=site_id, fuse_limit=20.0, timers=config.allocator["sites"][site_id]["timers"])
    await watch.publish(topics.site_settings(site_id), retained, retain=True)
    await publish_car(watch, topics, site_id, 5.0)
    async with running(config):
        first = sp(await watch.expect(topics.setpoint(site_id, "car")))
        assert first.current == 14.0


async def test_configured_defaults_apply_without_retained_settings(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"fuse_limit": 16.0, "timers": FAST_TIMERS}},
                         loads={f"{site_id}/car": {"max_current": 8.0}})
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    await watch.publish(topics.load_state(site_id, "van"), evse(site_id, "van"), retain=True)
    await watch.publish(topics.measurement(site_id), measurement(site_id, 0.0), retain=True)
    async with running(config):
        car = sp(await watch.expect(topics.setpoint(site_id, "car")))
        van = sp(await watch.expect(topics.setpoint(site_id, "van")))
        assert car.current == 8.0  # the configured per-load cap
        assert car.current + van.current <= 15.0  # 16 A fuse - 1 A margin


MALFORMED_SITE = [
    "not json", "{", "[]", "null", "16", '{"fuse_limit": "16"}', '{"fuse_limit": NaN}', '{"fuse_limit": -5}',
    '{"fuse_limit": Infinity}', '{"fuse_limit": 1e309}', '{"unknown": 1}', '{"mode": "turbo"}',
    '{"timers": {"min_run": "60"}}', '{"timers": {"min_run": -1}}', '{"strategy": 3}',
    '{"battery": {"min_soc": 50.0, "target_soc": 20.0}}', '{"phases": ["A", "A"]}', '{"phases": []}',
    '{"circuits": [{"id": "garage", "limit": 16.0, "parent": "nowhere"}]}',
    '{"schedules": [{"start": "22:00", "end": "06:00", "mode": "standard", "tz": "Mars/Olympus"}]}',
    '{"schedules": [{"start": "25:00", "end": "06:00", "mode": "standard"}]}', '{"fuse_limit": 25.0, "x": 1}',
    '{"transaction": 5}', '{"fuse_limit": null}', "\xff\xfe",
]
MALFORMED_LOAD = [
    "{bad", '{"min_current": -6}', '{"priority": 0}', '{"priority": "1"}', '{"enabled": "yes"}',
    '{"min_current": 10.0, "max_current": 6.0}', '{"max_current": NaN}', '{"mode": "warp"}', '{"load": "x"}',
    '{"priority": 1.5}', '{"name": 7}', '{"priority": null}',
]


async def test_a_thousand_malformed_set_payloads_change_nothing_and_each_is_reported(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    await publish_car(watch, topics, site_id, 2.0)
    async with running(config):
        await watch.expect(topics.setpoint(site_id, "car"))
        mark = watch.mark()
        for i in range(1000):
            if i % 3 == 2:
                await watch.publish(topics.load_settings_set(site_id, "car"), MALFORMED_LOAD[i % len(MALFORMED_LOAD)])
            else:
                await watch.publish(topics.site_settings_set(site_id), MALFORMED_SITE[i % len(MALFORMED_SITE)])
        for _ in range(600):
            if len(watch.on(topics.errors(site_id), after=mark)) >= 1000:
                break
            await asyncio.sleep(0.05)
        reports = [m.model(ErrorReport) for m in watch.on(topics.errors(site_id), after=mark)]
        assert len(reports) == 1000
        assert {r.service for r in reports} == {"allocator"}
        assert {r.error for r in reports} == {"validation", "rejected"}
        assert not watch.on(topics.site_settings(site_id), after=mark)
        assert not watch.on(topics.load_settings(site_id, "car"), after=mark)
        # still answering: a valid change applies, and it is the only change
        await watch.publish(topics.site_settings_set(site_id), {"fuse_limit": 20.0, "transaction": "after"})
        applied = (await watch.expect(topics.site_settings(site_id), after=mark)).model(SiteSettings)
        assert applied.fuse_limit == 20.0 and applied.transaction == "after"
        expected = SiteSettings(site=site_id, fuse_limit=20.0, timers=config.allocator["sites"][site_id]["timers"])
        assert applied.model_dump(exclude={"ts", "transaction"}) == expected.model_dump(exclude={"ts", "transaction"})
        await car_at_full_speed(watch, topics, site_id, after=mark)


async def test_stale_measurement_gives_stale_data_then_recovers(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "stale_after": 1.0}}})
    await publish_car(watch, topics, site_id, 2.0)
    async with running(config):
        await car_at_full_speed(watch, topics, site_id)
        # nothing arrives any more: the refresh tick still decides, and finds the reading stale
        stale = sp(await watch.expect(topics.setpoint(site_id, "car"), timeout=5,
                                      where=lambda m: sp(m).reason is Reason.STALE_DATA))
        assert stale.current == 0.0  # no known-safe minimum without data
        decision = await watch.expect(topics.decision(site_id), where=lambda m: m.model(SiteDecision).stale)
        assert decision.model(SiteDecision).stale
        mark = watch.mark()
        await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
        recovered = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                          where=lambda m: sp(m).reason is not Reason.STALE_DATA))
        assert recovered.current == 16.0


async def test_a_schedule_window_switches_the_mode(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    await publish_car(watch, topics, site_id, 2.0)
    t = now()
    window: dict[str, Any] = {"start": (t - timedelta(hours=1)).strftime("%H:%M"),
                              "end": (t + timedelta(hours=1)).strftime("%H:%M"), "tz": "UTC"}
    elsewhere: dict[str, Any] = {"start": (t + timedelta(hours=2)).strftime("%H:%M"),
                                 "end": (t + timedelta(hours=3)).strftime("%H:%M"), "tz": "UTC"}
    async with running(config):
        await car_at_full_speed(watch, topics, site_id)
        mark = watch.mark()
        await watch.publish(topics.site_settings_set(site_id), {"schedules": [
            {**elsewhere, "mode": "standard", "load": "car"}, {**window, "mode": "off", "load": "car"}]})
        off = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, where=lambda m: sp(m).current == 0))
        assert (off.mode.value, off.reason) == ("off", Reason.OFF)
        mark = watch.mark()
        await watch.publish(topics.site_settings_set(site_id), {"schedules": [{**elsewhere, "mode": "off"}]})
        back = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, where=lambda m: sp(m).current > 0))
        assert back.mode.value == "standard"


async def test_an_offline_load_is_passed_as_unavailable(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    await publish_car(watch, topics, site_id, 2.0)
    async with running(config):
        await car_at_full_speed(watch, topics, site_id)
        mark = watch.mark()
        await watch.publish(topics.load_availability(site_id, "car"), "offline", retain=True)
        gone = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark))
        assert (gone.current, gone.reason) == (0.0, Reason.UNAVAILABLE)
        await watch.publish(topics.load_availability(site_id, "car"), "online", retain=True)
        await car_at_full_speed(watch, topics, site_id, after=mark)


async def test_one_instance_serves_ten_sites(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    sites = [f"{site_id}-{i}" for i in range(10)]
    # every site is configured: half with their settings there, half with them retained on the broker
    config = make_config(sites={s: {"timers": FAST_TIMERS} if i < 5 else {} for i, s in enumerate(sites)})
    for i, s in enumerate(sites):
        if i >= 5:
            await watch.publish(topics.site_settings(s), SiteSettings(site=s, timers=Timers(**FAST_TIMERS)),
                                retain=True)
        await watch.publish(topics.load_state(s, "car"), evse(s, "car"), retain=True)
        await watch.publish(topics.measurement(s), measurement(s, float(i)), retain=True)
    async with running(config):
        for i, s in enumerate(sites):
            got = sp(await watch.expect(topics.setpoint(s, "car")))
            assert got.site == s, got
            assert got.current == min(16.0, 24.0 - i), (got.reason, got.message)


async def test_a_payload_for_another_site_than_its_topic_is_rejected(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    async with running(config):
        mark = watch.mark()
        await watch.publish(topics.measurement(site_id), measurement("elsewhere", 2.0))
        report = (await watch.expect(topics.errors(site_id), after=mark)).model(ErrorReport)
        assert report.error == "rejected" and "elsewhere" in report.message
        await watch.publish(topics.site_settings_set(site_id), json.dumps({"mode": "solar_only"}))
        await watch.expect(topics.site_settings(site_id), after=mark, where=lambda m: m.json()["mode"] == "solar_only")


async def test_single_field_set_topics_apply_one_value(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    await publish_car(watch, topics, site_id, 2.0)
    async with running(config):
        await car_at_full_speed(watch, topics, site_id)
        mark = watch.mark()
        await watch.publish(topics.load_settings_set_field(site_id, "car", "max_current"), "10")
        await watch.expect(topics.setpoint(site_id, "car"), after=mark, where=lambda m: sp(m).current == 10.0)
        await watch.publish(topics.site_settings_set_field(site_id, "mode"), "banana")
        await watch.publish(topics.site_settings_set_field(site_id, "fuse"), "16")
        await watch.publish(topics.site_settings_set_field(site_id, "mode"), "off")
        settings = await watch.expect(topics.site_settings(site_id), after=mark)
        assert settings.json()["mode"] == "off"
        reports = [m.model(ErrorReport) for m in watch.on(topics.errors(site_id), after=mark)]
        assert [r.error for r in reports] == ["validation", "rejected"]
        off = sp(await watch.expect(topics.setpoint(site_id, "car"), after=watch.messages.index(settings)))
        assert (off.current, off.reason) == (0.0, Reason.OFF)


async def test_hostile_set_payloads_are_judged_as_validation_not_tripped_over(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    """100 000 brackets or a 400-digit number on a ``/set`` topic are refused as input, with a report each; no
    handler error, no traceback, and the allocator keeps answering."""
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    await publish_car(watch, topics, site_id, 2.0)
    hostile = [
        (topics.site_settings_set_field(site_id, "mode"), "[" * 100_000),
        (topics.site_settings_set_field(site_id, "fuse_limit"), "9" * 400),
        (topics.site_settings_set(site_id), "[" * 100_000),
        (topics.site_settings_set(site_id), '{"timers": ' + "{" * 50_000),
        (topics.load_settings_set_field(site_id, "car", "max_current"), "[" * 100_000),
        (topics.load_settings_set(site_id, "car"), '{"max_current": ' + "9" * 400 + "}"),
    ]
    async with running(config):
        await car_at_full_speed(watch, topics, site_id)
        mark = watch.mark()
        for topic, body in hostile:
            await watch.publish(topic, body)
        for _ in range(200):
            if len(watch.on(topics.errors(site_id), after=mark)) >= len(hostile):
                break
            await asyncio.sleep(0.05)
        reports = [m.model(ErrorReport) for m in watch.on(topics.errors(site_id), after=mark)]
        assert [(r.topic, r.error) for r in reports] == [(topic, "validation") for topic, _ in hostile]
        assert not watch.on(topics.site_settings(site_id), after=mark)
        await watch.publish(topics.site_settings_set_field(site_id, "mode"), "off")
        await watch.expect(topics.site_settings(site_id), after=mark, where=lambda m: m.json()["mode"] == "off")


async def test_a_removed_load_gets_its_setpoint_cleared(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    await watch.publish(topics.load_state(site_id, "van"), evse(site_id, "van"), retain=True)
    await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
    async with running(config):
        await watch.expect(topics.setpoint(site_id, "car"))
        mark = watch.mark()
        await watch.publish(topics.load_state(site_id, "car"), None, retain=True)
        await watch.expect(topics.setpoint(site_id, "car"), after=mark, where=lambda m: m.payload == b"")
        # the van is decided on alone now: it may take all of the room the two shared
        await watch.expect(topics.setpoint(site_id, "van"), after=mark, where=lambda m: sp(m).current == 16.0)
        cleared = watch.mark()
        await watch.expect(topics.decision(site_id), after=cleared)  # decisions go on, without the car
        assert "car" not in watch.on(topics.decision(site_id), after=cleared)[0].json()["limited"]
        assert not watch.on(topics.setpoint(site_id, "car"), after=cleared)


async def test_set_settings_are_published_again_after_a_broker_restart(
    own_mosquitto: type[Mosquitto], site_id: str
) -> None:
    broker = own_mosquitto().start()
    topics = Topics()
    config = AmpmqConfig(mqtt_url=broker.url, allocator={"settle": 0.2, "sites": {site_id: {"timers": FAST_TIMERS}}})
    async with running(config):
        async with Probe(broker.url) as probe:
            await probe.subscribe(topics.site_settings(site_id))
            await probe.publish(topics.site_settings_set(site_id), {"fuse_limit": 20.0})
            await probe.expect(topics.site_settings(site_id))
        broker.restart()  # no persistence: the broker forgets every retained message
        async with Probe(broker.url) as probe:
            await probe.subscribe(topics.site_settings(site_id))
            again = await probe.expect(topics.site_settings(site_id), timeout=15)
            assert again.model(SiteSettings).fuse_limit == 20.0


async def test_the_service_runs_on_the_injected_clock(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    clock = ScaledClock(now(), speed=20.0)  # min_pause 30 s passes in 1.5 s
    min_pause = 30.0
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "min_pause": min_pause, "min_interval": 1.0,
                                                     "refresh": 5.0}}})
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    house = {"A": 5.0}

    async def feed() -> None:
        while True:  # the meter, and the car's adapter re-publishing its state (a state counts for 30 s)
            await watch.publish(topics.measurement(site_id), measurement(site_id, house["A"], clock.now()))
            car = evse(site_id, "car").model_copy(update={"ts": clock.now()})
            await watch.publish(topics.load_state(site_id, "car"), car, retain=True)
            await asyncio.sleep(0.1)

    feeder = asyncio.create_task(feed())
    try:
        async with running(config, clock):
            await car_at_full_speed(watch, topics, site_id)
            mark = watch.mark()
            house["A"] = 30.0
            paused = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                           where=lambda m: sp(m).current == 0.0))
            house["A"] = 5.0
            resumed = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=10,
                                            where=lambda m: sp(m).current > 0))
    finally:
        feeder.cancel()
    assert paused.paused_since is not None
    assert resumed.ts - paused.paused_since >= timedelta(seconds=min_pause)
    assert resumed.valid_until - resumed.ts == timedelta(seconds=FAST_TIMERS["setpoint_lifetime"])


async def test_instances_partition_sites_with_serve_only(
    watch: Probe, topics: Topics, site_id: str, mqtt_url: str
) -> None:
    mine, theirs = f"{site_id}-a", f"{site_id}-b"
    for s in (mine, theirs):
        await watch.publish(topics.load_state(s, "car"), evse(s, "car"), retain=True)
        await watch.publish(topics.measurement(s), measurement(s, 2.0), retain=True)
        await watch.publish(topics.site_settings(s), SiteSettings(site=s, timers=Timers(**FAST_TIMERS)), retain=True)

    def config(serve: str) -> AmpmqConfig:
        return AmpmqConfig(mqtt_url=mqtt_url, root=topics.root, allocator={"settle": 0.2, "serve_only": [serve]})

    async with running(config(mine)):
        mark = watch.mark()
        for _ in range(3):  # three refreshes of its own site...
            await watch.expect(topics.decision(mine), after=watch.mark(), timeout=5)
        assert not watch.on(topics.decision(theirs), after=mark)  # ...and not one decision for the other
        await watch.publish(topics.site_settings_set(theirs), {"mode": "off"})
        async with running(config(theirs)):
            off = sp(await watch.expect(topics.setpoint(theirs, "car"), after=mark, timeout=5))
    # the /set sent while no instance served the site was applied by no one
    assert not watch.on(topics.site_settings(theirs), after=mark)
    assert (off.current, off.reason) == (16.0, Reason.OK)


async def test_the_allocator_works_behind_the_generated_acl(own_mosquitto: type[Mosquitto], site_id: str) -> None:
    topics = Topics()
    broker, config = behind_generated_acl(own_mosquitto, site_id)
    async with (Probe(broker.url_for("meter-bridge")) as meter, Probe(broker.url_for("load-adapters")) as adapter,
                Probe(broker.url_for(acl.OPERATOR)) as operator):
        await operator.subscribe(topics.site_all(site_id))
        await adapter.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
        await meter.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
        async with running(config):
            await operator.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 16.0)
            await operator.publish(topics.load_settings_set_field(site_id, "car", "max_current"), "10")
            await operator.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 10.0)
            await operator.publish(topics.site_settings_set(site_id), {"fuse_limit": "25"})
            report = (await operator.expect(topics.errors(site_id))).model(ErrorReport)
            assert report.service == "allocator"


async def test_a_users_mode_change_overrides_min_pause(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "min_pause": 600.0}}})
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    house = {"A": 5.0}
    feeder = asyncio.create_task(_hold_measurement(watch, topics, site_id, lambda: house["A"], lambda: 0.0))
    try:
        async with running(config):
            await car_at_full_speed(watch, topics, site_id)
            mark = watch.mark()
            house["A"] = 30.0
            await watch.expect(topics.setpoint(site_id, "car"), after=mark, where=lambda m: sp(m).current == 0.0)
            house["A"] = 5.0
            held = await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                      where=lambda m: sp(m).reason is Reason.MIN_PAUSE)
            # the room is back (the decision says so): only the pause holds the car
            await watch.expect(topics.decision(site_id), after=mark, where=lambda m: m.json()["headroom"]["A"] > 6
                               and m.json()["limited"] == {"car": "min_pause"})
            await watch.publish(topics.load_settings_set(site_id, "car"), {"mode": "solar_priority"})
            restarted = sp(await watch.expect(topics.setpoint(site_id, "car"), after=watch.messages.index(held),
                                              where=lambda m: sp(m).current > 0))
    finally:
        feeder.cancel()
    assert restarted.mode.value == "solar_priority"
    assert restarted.current == 6.0  # solar priority without surplus: the minimum, from the grid


async def test_a_set_applies_over_settings_stamped_by_a_clock_ahead_of_ours(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    ahead = now() + timedelta(days=1)
    retained = SiteSettings(site=site_id, ts=ahead, fuse_limit=10.0, timers=Timers(**FAST_TIMERS))
    await watch.publish(topics.site_settings(site_id), retained, retain=True)
    await publish_car(watch, topics, site_id, 2.0)
    async with running(config):
        await watch.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 7.0)  # 10 - 1 - 2
        mark = watch.mark()
        await watch.publish(topics.site_settings_set(site_id), {"fuse_limit": 25.0})
        applied = (await watch.expect(topics.site_settings(site_id), after=mark)).model(SiteSettings)
        assert applied.fuse_limit == 25.0 and applied.ts > ahead
        await car_at_full_speed(watch, topics, site_id, after=mark)


async def test_the_smoothed_surplus_carries_on_from_the_retained_site_decision(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": {**FAST_TIMERS, "surplus_smoothing": 0.5}}})
    previous = SiteDecision(site=site_id, ts=now() - timedelta(seconds=1),
                            surplus_ema={Phase.A: 2.0, Phase.B: 2.0, Phase.C: 2.0})
    await watch.publish(topics.decision(site_id), previous, retain=True)  # what the last instance left
    await publish_car(watch, topics, site_id, -10.0)  # 10 A export
    await watch.expect(topics.decision(site_id))
    mark = watch.mark()
    async with running(config):
        first = (await watch.expect(topics.decision(site_id), after=mark)).model(SiteDecision)
    # an increase is smoothed: halfway from the remembered 2 A to the 10 A exported now (a fresh start: 10 A)
    assert first.surplus_ema == {Phase.A: 6.0, Phase.B: 6.0, Phase.C: 6.0}


async def test_home_assistant_discovery_is_published_and_resent_when_home_assistant_restarts(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    ha = discovery_prefix(topics)
    load_mode = f"{ha}/select/ampmq-{site_id}-car/mode/config"
    site_mode = f"{ha}/select/ampmq-{site_id}/mode/config"
    await watch.subscribe(f"{ha}/#")
    await publish_car(watch, topics, site_id, 5.0)
    async with running(config):
        entity = (await watch.expect(load_mode)).json()
        assert entity["command_topic"] == topics.load_settings_set(site_id, "car")
        assert entity["state_topic"] == topics.load_settings(site_id, "car")
        await watch.expect(site_mode)
        mark = watch.mark()
        await watch.publish(f"{ha}/status", "online")
        await watch.expect(load_mode, after=mark)
        await watch.expect(site_mode, after=mark)
        # what Home Assistant sends when a user picks a mode is applied
        await watch.publish(entity["command_topic"], '{"mode": "solar_only"}')
        await watch.expect(topics.load_settings(site_id, "car"), where=lambda m: m.json()["mode"] == "solar_only")
    # tidy the retained discovery this test left on the session broker
    for topic in {m.topic for m in watch.on(f"{ha}/#") if m.topic.endswith("/config")}:
        await watch.publish(topic, b"", retain=True)


async def test_an_unchanged_setpoint_is_renewed_three_times_in_its_lifetime_and_a_changed_one_goes_at_once(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    """Renewed every third of ``setpoint_lifetime`` (here 3 s; never more often than ``refresh``), give or take
    the last quarter of that: long before it expires, and not with every decision."""
    timers = {**FAST_TIMERS, "refresh": 1.0, "setpoint_lifetime": 9.0}
    config = make_config(sites={site_id: {"fuse_limit": 25.0, "margin": 1.0, "timers": timers}})
    await publish_car(watch, topics, site_id, 10.0)
    async with running(config):
        first = sp(await watch.expect(topics.setpoint(site_id, "car")))
        mark = watch.mark()
        for _ in range(10):  # ten readings that change nothing: ten decisions, no new setpoint
            await watch.publish(topics.measurement(site_id), measurement(site_id, 10.0), retain=True)
            await asyncio.sleep(0.08)
        assert not watch.on(topics.setpoint(site_id, "car"), after=mark)
        renewed = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=5))
        assert renewed.current == first.current
        assert 2.0 <= (renewed.valid_until - first.valid_until).total_seconds() < 9.0
        mark = watch.mark()
        await watch.publish(topics.measurement(site_id), measurement(site_id, 15.0), retain=True)
        cut = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=0.5))
        assert cut.current == 9.0
