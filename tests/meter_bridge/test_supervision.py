"""A source that goes silent loses its fields; a driver whose device is gone is restarted with backoff,
reported offline, and the site's other source keeps publishing."""

from __future__ import annotations

import asyncio

from shared.probe import Probe

from .conftest import TOPICS, currents, measurement, payload, running_bridge
from .peers import HomeWizardPeer
from .test_homewizard import P1_DATA


async def test_silent_source_fields_are_dropped_and_republished(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    await probe.subscribe(TOPICS.meter_availability(site_id, "grid"))
    prefix = f"shellypro3em-{site_id}"
    pv = f"pv-{site_id}"
    sources = [{"id": "grid", "driver": "shelly", "prefix": prefix},
               {"id": "pv", "driver": "tasmota", "device": pv, "role": "solar"}]
    async with running_bridge(mqtt_url, {site_id: {"sources": sources, "stale_after": 0.6}}):
        await probe.publish(f"{prefix}/status/em:0", payload({"a_current": 3.0, "a_act_power": 690.0}))
        await probe.expect(TOPICS.measurement(site_id), where=lambda m: currents(m) == {"A": 3.0})
        assert (await probe.expect(TOPICS.meter_availability(site_id, "grid"))).text == "online"
        mark = probe.mark()
        # the solar source keeps talking, the grid meter is silent from now on
        for _ in range(30):
            await probe.publish(f"tele/{pv}/SENSOR", payload({"ENERGY": {"Power": 1500}}))
            if any(not measurement(m).grid_current for m in probe.on(TOPICS.measurement(site_id), after=mark)):
                break
            await asyncio.sleep(0.1)
        dropped = await probe.expect(TOPICS.measurement(site_id), after=mark,
                                     where=lambda m: not measurement(m).grid_current)
        m = measurement(dropped)
        assert m.grid_power is None and m.voltage == {}  # dropped, not frozen
        assert m.solar_power is not None and m.solar_power.source == "pv"
        stale = await probe.expect(TOPICS.errors(site_id), where=lambda e: e.json()["error"] == "stale")
        assert stale.json()["topic"] == "grid"
        assert (await probe.expect(TOPICS.meter_availability(site_id, "grid"), after=mark)).text == "offline"


async def test_gone_device_is_restarted_with_backoff_and_other_source_keeps_publishing(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    await probe.subscribe(TOPICS.meter_availability(site_id, "+"))
    peer = HomeWizardPeer(dict(P1_DATA))  # not started: nothing listens on its port yet
    prefix = f"shellypro3em-{site_id}"
    sources = [
        {"id": "p1", "driver": "homewizard", "url": peer.url, "poll_interval": 0.1, "timeout": 1,
         "backoff_initial": 0.1, "backoff_max": 0.4, "role": "grid", "feeds": ["grid_power"]},
        {"id": "shelly", "driver": "shelly", "prefix": prefix, "feeds": ["grid_current"]},
    ]
    try:
        async with running_bridge(mqtt_url, {site_id: {"sources": sources, "stale_after": 5}}) as bridge:
            offline = await probe.expect(TOPICS.meter_availability(site_id, "p1"))
            assert offline.text == "offline"
            first = await probe.expect(TOPICS.errors(site_id), where=lambda e: e.json()["error"] == "driver_failed")
            assert "p1" in first.json()["message"]
            mark = probe.mark()
            await probe.expect(TOPICS.errors(site_id), after=mark,
                               where=lambda e: e.json()["error"] == "driver_failed")  # restarted, failed again
            supervisor = bridge.sites[site_id].channels["p1"].supervisor
            assert supervisor is not None and supervisor.restarts >= 2
            # meanwhile the other source of the site publishes as usual
            await probe.publish(f"{prefix}/status/em:0", payload({"a_current": 7.0, "a_act_power": 1610.0}))
            msg = await probe.expect(TOPICS.measurement(site_id), where=lambda m: currents(m) == {"A": 7.0})
            assert measurement(msg).grid_power is None
            # the device comes back: the next restart finds it
            await peer.start()
            back = await probe.expect(TOPICS.meter_availability(site_id, "p1"), after=mark,
                                      where=lambda m: m.text == "online", timeout=5)
            assert back.text == "online"
            both = await probe.expect(TOPICS.measurement(site_id),
                                      where=lambda m: measurement(m).grid_power is not None)
            got = measurement(both)
            assert got.grid_power is not None and got.grid_power.source == "p1" and got.grid_power.value == 2070.0
            assert currents(both) == {"A": 7.0}
    finally:
        await peer.stop()
