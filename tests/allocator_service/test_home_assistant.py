"""What a Home Assistant (or Node-RED) user sees of the allocator on a real broker: settings retained from
the start, discovery withdrawn for removed loads, templates that survive a stale meter, and error reports
that name the request they answer."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import jinja2
import pytest

from services.allocator.announce import DEFAULTS_TS
from services.allocator.service import running
from shared.config import AmpmqConfig
from shared.models import ErrorReport, LoadSettings, SiteDecision, SiteMeasurement, SiteSettings
from shared.probe import Probe
from shared.topics import Topics

from .conftest import FAST_TIMERS, evse, measurement

STRICT = jinja2.Environment(undefined=jinja2.StrictUndefined)


def render(template: str, payload: bytes) -> str:
    """A template rendered as Home Assistant renders it for an MQTT payload (undefined names raise here)."""
    values: dict[str, Any] = {"value": payload.decode()}
    with contextlib.suppress(ValueError):
        values["value_json"] = json.loads(payload)
    return STRICT.from_string(template).render(**values)


@pytest.fixture
async def ha(watch: Probe, site_id: str) -> AsyncIterator[str]:
    """A discovery prefix of the test's own, watched; its retained configs are cleared afterwards."""
    prefix = f"ha-{site_id}"
    await watch.subscribe(f"{prefix}/#")
    yield prefix
    for topic in {m.topic for m in watch.on(f"{prefix}/#") if m.topic.endswith("/config")}:
        await watch.publish(topic, b"", retain=True)


def config(mqtt_url: str, topics: Topics, prefix: str, sites: dict[str, Any],
           loads: dict[str, Any] | None = None) -> AmpmqConfig:
    return AmpmqConfig(mqtt_url=mqtt_url, root=topics.root, allocator={
        "settle": 0.3, "sites": sites, "loads": loads or {}, "discovery_prefix": prefix})


async def test_settings_are_retained_from_the_start_before_any_set(
    watch: Probe, topics: Topics, site_id: str, mqtt_url: str, ha: str
) -> None:
    """Issue 17: a load's select, number and switch started as ``unknown`` until its first ``/set``."""
    sites = {site_id: {"fuse_limit": 32.0, "timers": FAST_TIMERS}}
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
    async with running(config(mqtt_url, topics, ha, sites, {f"{site_id}/car": {"priority": 2}})):
        car = (await watch.expect(topics.load_settings(site_id, "car"))).model(LoadSettings)
        site = (await watch.expect(topics.site_settings(site_id))).model(SiteSettings)
        assert (car.priority, site.fuse_limit) == (2, 32.0)
        assert car.ts == site.ts == DEFAULTS_TS  # the configured defaults, never set
    # retained: what Home Assistant gets when it subscribes, long after the allocator started
    async with Probe(mqtt_url) as late:
        await late.subscribe(topics.load_settings(site_id, "car"))
        retained = await late.expect(topics.load_settings(site_id, "car"))
        assert retained.retain and retained.model(LoadSettings).priority == 2
    # published defaults are not taken for set settings: an edited default applies at the next start
    mark = watch.mark()
    async with running(config(mqtt_url, topics, ha, sites, {f"{site_id}/car": {"priority": 7}})):
        await watch.expect(topics.load_settings(site_id, "car"), after=mark,
                           where=lambda m: m.model(LoadSettings).priority == 7)
        # and a /set merges into them and is a setting like any other
        await watch.publish(topics.load_settings_set(site_id, "car"), {"enabled": False})
        set_ = (await watch.expect(topics.load_settings(site_id, "car"), after=mark,
                                   where=lambda m: not m.model(LoadSettings).enabled)).model(LoadSettings)
        assert set_.priority == 7 and set_.ts > DEFAULTS_TS


async def test_removed_loads_have_their_configs_withdrawn(
    watch: Probe, topics: Topics, site_id: str, mqtt_url: str, ha: str
) -> None:
    sites = {site_id: {"timers": FAST_TIMERS}}
    car_mode, van_mode = f"{ha}/select/ampmq-{site_id}-car/mode/config", f"{ha}/select/ampmq-{site_id}-van/mode/config"
    for load in ("car", "van"):
        await watch.publish(topics.load_state(site_id, load), evse(site_id, load), retain=True)
    await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
    async with running(config(mqtt_url, topics, ha, sites)):
        await watch.expect(car_mode)
        await watch.expect(van_mode)
        car_topics = {m.topic for m in watch.on(f"{ha}/#") if f"/ampmq-{site_id}-car/" in m.topic}
        assert len(car_topics) >= 10
        # the adapter removes the car: every one of its configs is withdrawn (an empty retained payload)
        mark = watch.mark()
        await watch.publish(topics.load_state(site_id, "car"), None, retain=True)
        for topic in car_topics:
            await watch.expect(topic, after=mark, where=lambda m: m.payload == b"" and m.retain is not None)
    # the van is removed while no allocator runs: the next one withdraws its configs once settled
    van_topics = {m.topic for m in watch.on(f"{ha}/#") if f"/ampmq-{site_id}-van/" in m.topic}
    await watch.publish(topics.load_state(site_id, "van"), None, retain=True)
    mark = watch.mark()
    async with running(config(mqtt_url, topics, ha, sites)):
        for topic in van_topics:
            await watch.expect(topic, after=mark, where=lambda m: m.payload == b"")
        # the site's own configs stay
        await watch.expect(f"{ha}/select/ampmq-{site_id}/mode/config", after=mark, where=lambda m: m.payload != b"")
    async with Probe(mqtt_url) as late:
        await late.subscribe(f"{ha}/+/ampmq-{site_id}-van/+/config")
        await late.subscribe(topics.site_settings(site_id))
        await late.expect(topics.site_settings(site_id))  # retained messages came: the van's configs did not
        assert not late.on(f"{ha}/+/ampmq-{site_id}-van/+/config")


async def test_a_stale_meter_turns_sensors_unavailable_without_template_errors(
    watch: Probe, topics: Topics, site_id: str, mqtt_url: str, ha: str
) -> None:
    """Issue 17: when the meter went stale ``grid_current`` and ``headroom`` became ``{}``, and HA logged
    "'dict object' has no attribute 'A'" and showed the raw JSON."""
    sites = {site_id: {"timers": {**FAST_TIMERS, "stale_after": 1.0}}}
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
    async with running(config(mqtt_url, topics, ha, sites)):
        grid = (await watch.expect(f"{ha}/sensor/ampmq-{site_id}/grid_current_a/config")).json()
        headroom = (await watch.expect(f"{ha}/sensor/ampmq-{site_id}/headroom_a/config")).json()
        fresh = await watch.expect(topics.decision(site_id), where=lambda m: not m.model(SiteDecision).stale)
        assert float(render(headroom["value_template"], fresh.payload)) > 0
        # the meter's phases are gone; the allocator decides on stale data
        mark = watch.mark()
        await watch.publish(topics.measurement(site_id), SiteMeasurement(site=site_id), retain=True)
        stale = await watch.expect(topics.decision(site_id), after=mark, timeout=5,
                                   where=lambda m: m.model(SiteDecision).stale)
    meter = watch.on(topics.measurement(site_id), after=mark)[-1]
    for entity, payload in ((grid, meter.payload), (headroom, stale.payload)):
        assert render(entity["value_template"], payload) == "None"
        checks = [a for a in entity["availability"] if a["topic"] == entity["state_topic"]]
        assert [render(a["value_template"], payload) for a in checks] == ["offline"]
    # a meter that went silent keeps its last reading retained: the stale decision makes it unavailable
    on_decision = [a for a in grid["availability"] if a["topic"] == topics.decision(site_id)]
    assert [render(a["value_template"], stale.payload) for a in on_decision] == ["offline"]
    assert [render(a["value_template"], fresh.payload) for a in on_decision] == ["online"]


async def test_an_error_report_carries_the_transaction_of_the_rejected_request(
    watch: Probe, topics: Topics, site_id: str, mqtt_url: str, ha: str
) -> None:
    """Issue 17 (Node-RED): a rejection could not be matched to its request."""
    sites = {site_id: {"timers": FAST_TIMERS}}
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car"), retain=True)
    async with running(config(mqtt_url, topics, ha, sites)):
        await watch.expect(topics.load_settings(site_id, "car"))
        await watch.publish(topics.load_settings_set(site_id, "car"), {"priority": 0, "transaction": "nr-17"})
        invalid = (await watch.expect(topics.errors(site_id))).model(ErrorReport)
        assert (invalid.error, invalid.transaction) == ("validation", "nr-17")
        # well-formed, but its result breaks a rule of the settings
        mark = watch.mark()
        await watch.publish(topics.load_settings_set(site_id, "car"),
                            {"min_current": 10.0, "max_current": 6.0, "transaction": "nr-18"})
        rejected = (await watch.expect(topics.errors(site_id), after=mark)).model(ErrorReport)
        assert rejected.transaction == "nr-18"
        # a request without one, or with one no client could have meant, gets none
        mark = watch.mark()
        await watch.publish(topics.site_settings_set(site_id), {"fuse_limit": -1, "transaction": "x" * 65})
        assert (await watch.expect(topics.errors(site_id), after=mark)).model(ErrorReport).transaction is None
