"""Limits nobody can talk up, and only configured sites and loads (issue 16, "physical limits are plain
settings"; issue 15.5, a /set for a load that does not exist)."""

from __future__ import annotations

from collections.abc import Callable

from services.allocator.service import running
from shared.config import AmpmqConfig
from shared.models import ErrorReport, Setpoint, SiteSettings
from shared.probe import Probe, Received
from shared.topics import Topics

from .conftest import FAST_TIMERS, evse, measurement


def sp(msg: Received) -> Setpoint:
    return msg.model(Setpoint)


def errors(watch: Probe, topics: Topics, site: str, after: int = 0) -> list[ErrorReport]:
    return [m.model(ErrorReport) for m in watch.on(topics.errors(site), after=after)]


async def _car_and_meter(watch: Probe, topics: Topics, site: str, house: float) -> None:
    car = evse(site, "car", max_current=63.0)
    await watch.publish(topics.load_state(site, "car"), car, retain=True)
    await watch.publish(topics.measurement(site), measurement(site, house), retain=True)


async def test_a_set_may_lower_the_fuse_but_never_raise_it_past_the_config(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"fuse_limit": 25.0, "margin": 1.0, "timers": FAST_TIMERS}})
    await _car_and_meter(watch, topics, site_id, 2.0)
    async with running(config):
        await watch.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 22.0)
        mark = watch.mark()
        await watch.publish(topics.site_settings_set(site_id), {"fuse_limit": 1000, "margin": 0})
        report = (await watch.expect(topics.errors(site_id), after=mark)).model(ErrorReport)
        assert report.error == "rejected"
        assert "configured fuse limit 25 A" in report.message and "configured margin 1 A" in report.message
        # one field at a time is no way round it
        await watch.publish(topics.site_settings_set_field(site_id, "fuse_limit"), "63")
        await watch.expect(topics.errors(site_id), after=mark, where=lambda m: "63 A" in m.json()["message"])
        # safer is fine: a lower fuse, a wider margin
        await watch.publish(topics.site_settings_set(site_id), {"fuse_limit": 20.0, "margin": 2.0})
        applied = (await watch.expect(topics.site_settings(site_id), after=mark)).model(SiteSettings)
        assert (applied.fuse_limit, applied.margin) == (20.0, 2.0)
        await watch.expect(topics.setpoint(site_id, "car"), after=mark, where=lambda m: sp(m).current == 16.0)
        # and back up to the configured fuse, not past it
        await watch.publish(topics.site_settings_set(site_id), {"fuse_limit": 25.0, "margin": 1.0})
        await watch.expect(topics.setpoint(site_id, "car"), after=mark, where=lambda m: sp(m).current == 22.0)
    published = [m.model(SiteSettings) for m in watch.on(topics.site_settings(site_id), after=mark)]
    assert [(s.fuse_limit, s.margin) for s in published] == [(20.0, 2.0), (25.0, 1.0)]  # nothing else retained
    assert max(sp(m).current for m in watch.on(topics.setpoint(site_id, "car"), after=mark)) == 22.0


async def test_circuit_and_import_limits_may_only_be_lowered(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS, "max_import_power": 11000.0,
                                          "circuits": [{"id": "garage", "limit": 16.0}]}})
    await _car_and_meter(watch, topics, site_id, 2.0)
    async with running(config):
        await watch.expect(topics.setpoint(site_id, "car"))
        mark = watch.mark()
        for bad in ({"circuits": [{"id": "garage", "limit": 32.0}]}, {"circuits": []},
                    {"max_import_power": 40000.0}, {"max_import_power": None}):
            await watch.publish(topics.site_settings_set(site_id), bad)
        await watch.publish(topics.site_settings_set(site_id), {"circuits": [{"id": "garage", "limit": 10.0}],
                                                                "max_import_power": 9000.0, "transaction": "ok"})
        applied = (await watch.expect(topics.site_settings(site_id), after=mark)).model(SiteSettings)
        assert applied.transaction == "ok" and applied.circuits[0].limit == 10.0
        got = errors(watch, topics, site_id, after=mark)
    assert [r.error for r in got] == ["rejected"] * 4
    assert "configured 16 A" in got[0].message and "left out" in got[1].message
    assert "configured 11000 W" in got[2].message and "none" in got[3].message
    assert len(watch.on(topics.site_settings(site_id), after=mark)) == 1


async def test_retained_limits_from_before_are_clamped_to_the_config_and_reported(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    # what an old deployment (or a forged retained message) left: a 1000 A fuse and no margin
    config = make_config(sites={site_id: {"fuse_limit": 25.0, "margin": 1.0, "timers": FAST_TIMERS}})
    forged = SiteSettings(site=site_id, fuse_limit=1000.0, margin=0.0, mode="standard",
                          timers=config.allocator["sites"][site_id]["timers"])
    await watch.publish(topics.site_settings(site_id), forged, retain=True)
    await _car_and_meter(watch, topics, site_id, 2.0)
    async with running(config):
        first = sp(await watch.expect(topics.setpoint(site_id, "car")))
        report = (await watch.expect(topics.errors(site_id),
                                     where=lambda m: m.json()["error"] == "limit_clamped")).model(ErrorReport)
    assert first.current == 22.0  # 25 - 1 - 2, not 63
    assert "configured fuse limit 25 A" in report.message


async def test_only_configured_sites_are_served_and_each_other_site_is_reported_once(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    strangers = [f"{site_id}-x{i}" for i in range(40)]
    async with running(config) as service:
        mark = watch.mark()
        for _ in range(3):
            for s in strangers:
                await watch.publish(topics.site_settings_set(s), {})
        # the meter bridge's user may publish a measurement and a load for a site nobody configured
        other = strangers[0]
        await watch.publish(topics.measurement(other), measurement(other, 0.0), retain=True)
        await watch.publish(topics.load_state(other, "car"), evse(other, "car"), retain=True)
        await watch.expect(topics.errors(strangers[-1]), after=mark)
        await _car_and_meter(watch, topics, site_id, 2.0)
        await watch.expect(topics.setpoint(site_id, "car"), after=mark)  # the configured site is served
        await watch.expect(topics.decision(site_id), after=mark)
        assert set(service.registry.sites) == {site_id}  # no state kept for any other
    for s in strangers:
        got = errors(watch, topics, s, after=mark)
        assert [r.error for r in got] == ["unknown_site"], s  # once per site, not per message
        assert not watch.on(topics.site_settings(s), after=mark)
    assert not watch.on(topics.setpoint(other, "car"), after=mark)
    assert not watch.on(topics.decision(other), after=mark)


async def test_a_set_for_a_load_nobody_knows_is_reported_and_leaves_nothing(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}}, loads={f"{site_id}/boiler": {"priority": 2}})
    await _car_and_meter(watch, topics, site_id, 2.0)
    async with running(config):
        await watch.expect(topics.setpoint(site_id, "car"))
        mark = watch.mark()
        await watch.publish(topics.load_settings_set(site_id, "ghost"), {"mode": "off"})
        await watch.publish(topics.load_settings_set_field(site_id, "ghost", "priority"), "3")
        # a configured load not seen yet, and a load whose adapter announced it, may be set
        await watch.publish(topics.load_settings_set(site_id, "boiler"), {"mode": "off"})
        await watch.publish(topics.load_settings_set(site_id, "car"), {"mode": "off"})
        await watch.expect(topics.load_settings(site_id, "car"), after=mark)
        await watch.expect(topics.load_settings(site_id, "boiler"), after=mark)
    got = errors(watch, topics, site_id, after=mark)
    assert [r.error for r in got] == ["unknown_load", "unknown_load"]
    assert "ghost" in got[0].message
    assert not watch.on(topics.load_settings(site_id, "ghost"), after=mark)
