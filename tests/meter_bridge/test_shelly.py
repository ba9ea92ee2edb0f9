"""Shelly Gen2 (status and NotifyStatus) and Gen1 payloads through a real broker into the measurement."""

from __future__ import annotations

from shared.probe import Probe

from .conftest import TOPICS, currents, measurement, payload, running_bridge

PRO3EM_STATUS = {
    "id": 0, "a_current": 4.0, "a_voltage": 230.0, "a_act_power": 900.0, "a_aprt_power": 920.0,
    "b_current": 2.0, "b_voltage": 231.0, "b_act_power": -460.0, "b_aprt_power": 462.0,
    "c_current": 1.0, "c_voltage": 229.0, "c_act_power": 220.0, "c_aprt_power": 229.0,
    "n_current": None, "total_current": 7.0, "total_act_power": 660.0, "total_aprt_power": 1611.0,
}


async def test_gen2_status_em0_gives_signed_currents_voltage_and_power(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    prefix = f"shellypro3em-{site_id}"
    sites = {site_id: {"sources": [{"id": "grid", "driver": "shelly", "prefix": prefix}]}}
    async with running_bridge(mqtt_url, sites):
        await probe.publish(f"{prefix}/status/em:0", payload(PRO3EM_STATUS))
        msg = await probe.expect(TOPICS.measurement(site_id))
        m = measurement(msg)
        assert currents(msg) == {"A": 4.0, "B": -2.0, "C": 1.0}
        assert {p.value: r.value for p, r in m.voltage.items()} == {"A": 230.0, "B": 231.0, "C": 229.0}
        assert m.grid_power is not None and m.grid_power.value == 660.0
        assert all(r.source == "grid" and not r.derived for r in m.grid_current.values())
        # no solar source: solar is derived from export (none here)
        assert m.solar_power is not None and m.solar_power.derived and m.solar_power.value == 0.0
    async with Probe(mqtt_url) as late:  # retained: a consumer that comes later still gets it
        await late.subscribe(TOPICS.measurement(site_id))
        retained = await late.expect(TOPICS.measurement(site_id))
        assert retained.retain and currents(retained) == {"A": 4.0, "B": -2.0, "C": 1.0}


async def test_gen2_notify_status_with_phase_map_and_inversion(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    prefix = f"shellypro3em-{site_id}"
    source = {"id": "grid", "driver": "shelly", "prefix": prefix, "invert": True, "phase_map": {1: "B", 2: "C", 3: "A"}}
    async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
        notify = {"src": prefix, "dst": f"{prefix}/events", "method": "NotifyStatus",
                  "params": {"ts": 1700000000.1, "em:0": {"id": 0, "a_current": 5.0, "a_act_power": -1150.0,
                                                          "b_current": 1.0, "b_act_power": 230.0}}}
        await probe.publish(f"{prefix}/events/rpc", payload(notify))
        msg = await probe.expect(TOPICS.measurement(site_id))
        # device a (export 1150 W) -> site B, inverted -> import 5 A; device b -> site C, inverted -> -1 A
        assert currents(msg) == {"B": 5.0, "C": -1.0}
        m = measurement(msg)
        assert m.grid_power is not None and m.grid_power.value == 920.0


async def test_pro_em_channel_em1_feeds_one_phase(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    prefix = f"shellyproem50-{site_id}"
    source = {"id": "grid", "driver": "shelly", "prefix": prefix, "phase_map": {1: "A"}}
    async with running_bridge(mqtt_url, {site_id: {"sources": [source], "phases": ["A"]}}):
        await probe.publish(f"{prefix}/status/em1:0", payload({"id": 0, "current": 8.0, "voltage": 232.0,
                                                                "act_power": -1800.0}))
        msg = await probe.expect(TOPICS.measurement(site_id))
        assert currents(msg) == {"A": -8.0}
        m = measurement(msg)
        assert m.solar_power is not None and m.solar_power.value == 1800.0 and m.solar_power.derived
        assert any("derived from grid export" in n for n in m.notes)


async def test_gen1_emeter_topics(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    prefix = f"shellies/shellyem3-{site_id}"
    async with running_bridge(mqtt_url, {site_id: {"sources": [
        {"id": "grid", "driver": "shelly", "prefix": prefix, "generation": 1}]}}):
        await probe.publish(f"{prefix}/emeter/1/power", "-690.5")
        await probe.publish(f"{prefix}/emeter/1/current", "3.0")
        await probe.publish(f"{prefix}/emeter/1/voltage", "230.2")
        msg = await probe.expect(
            TOPICS.measurement(site_id), where=lambda m: currents(m).get("B") == -3.0 and bool(measurement(m).voltage)
        )
        m = measurement(msg)
        assert not m.grid_current[next(iter(m.grid_current))].derived
        assert m.voltage[next(iter(m.voltage))].value == 230.2


async def test_malformed_shelly_payload_is_reported_on_the_site_errors_topic(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.errors(site_id))
    prefix = f"shellypro3em-{site_id}"
    async with running_bridge(mqtt_url, {site_id: {"sources": [{"id": "grid", "driver": "shelly", "prefix": prefix}]}}):
        await probe.publish(f"{prefix}/status/em:0", "{not json")
        err = (await probe.expect(TOPICS.errors(site_id))).json()
        assert err["error"] == "device_data" and err["topic"] == f"{prefix}/status/em:0"
        await probe.publish(f"{prefix}/status/em:0", payload({"a_current": "lots"}))
        err = (await probe.expect(TOPICS.errors(site_id), where=lambda m: "lots" in m.text)).json()
        assert "a_current" in err["message"]


async def test_retained_device_message_is_not_taken_as_fresh(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    old, new = f"old-{site_id}", f"new-{site_id}"
    await probe.publish(f"{old}/status/em:0", payload({"a_current": 30.0, "a_act_power": 6900.0}), retain=True)
    await probe.publish(f"{new}/status/em:0", payload({"a_current": 20.0, "a_act_power": 4600.0}), retain=True)
    sources = [{"id": "old", "driver": "shelly", "prefix": old, "phase_map": {1: "A"}},
               {"id": "new", "driver": "shelly", "prefix": new, "phase_map": {1: "B"}, "accept_retained": True}]
    try:
        async with running_bridge(mqtt_url, {site_id: {"sources": sources}}):
            msg = await probe.expect(TOPICS.measurement(site_id))
            assert currents(msg) == {"B": 20.0}  # the retained one of "old" (of unknown age) is ignored
            await probe.publish(f"{old}/status/em:0", payload({"a_current": 3.0, "a_act_power": 690.0}))
            await probe.expect(TOPICS.measurement(site_id), where=lambda m: currents(m) == {"A": 3.0, "B": 20.0})
    finally:
        await probe.publish(f"{old}/status/em:0", b"", retain=True)
        await probe.publish(f"{new}/status/em:0", b"", retain=True)


HOSTILE = [
    # (topic suffix, payload, error code, words in the message)
    ("status/em:0", '{"a_current": ' + "9" * 400 + "}", "device_data", "digits"),
    ("status/em:0", "[" * 100_000, "device_data", "nested"),
    ("status/em:0", '{"a_current": ' + "[" * 5_000 + "]" * 5_000 + "}", "device_data", "nested"),
    ("events/rpc", "[1, 2, 3]", "device_data", "object"),
    ("events/rpc", '"NotifyStatus"', "device_data", "object"),
    # a phase power its current cannot carry: applied, it would flip phase A to -20 A (export)
    ("status/em:0", payload({**PRO3EM_STATUS, "a_current": 20.0, "a_act_power": -1e9, "total_act_power": 6900.0}),
     "implausible", "power[L1]"),
    ("status/em:0", payload({**PRO3EM_STATUS, "a_current": 20.0, "a_act_power": -4600.0}), "implausible",
     "total_power"),
    ("status/em:0", payload({**PRO3EM_STATUS, "b_act_power": 1e9}), "implausible", "power[L2]"),
]


async def test_hostile_payloads_are_each_reported_and_none_is_applied(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.errors(site_id))
    await probe.subscribe(TOPICS.measurement(site_id))
    prefix = f"shellypro3em-{site_id}"
    sites = {site_id: {"sources": [{"id": "grid", "driver": "shelly", "prefix": prefix}]}}
    async with running_bridge(mqtt_url, sites) as bridge:
        await probe.publish(f"{prefix}/status/em:0", payload(PRO3EM_STATUS))
        await probe.expect(TOPICS.measurement(site_id))
        for suffix, body, code, words in HOSTILE:
            mark = probe.mark()
            await probe.publish(f"{prefix}/{suffix}", body)
            err = (await probe.expect(TOPICS.errors(site_id), after=mark)).json()
            assert (err["error"], err["topic"]) == (code, f"{prefix}/{suffix}"), err
            assert words in err["message"], err
        assert all(currents(m) == {"A": 4.0, "B": -2.0, "C": 1.0} for m in probe.on(TOPICS.measurement(site_id)))
        assert bridge.runtime.stats.handler_errors == 0
        # still reading: a sane status goes through
        mark = probe.mark()
        await probe.publish(f"{prefix}/status/em:0", payload({**PRO3EM_STATUS, "a_current": 6.0, "a_act_power": 1380.0,
                                                              "total_act_power": 1140.0}))
        later = await probe.expect(TOPICS.measurement(site_id), after=mark)
        assert currents(later)["A"] == 6.0


def emdata(imported: float, returned: float) -> dict[str, object]:
    """A Pro 3EM's ``emdata:0`` status (Shelly Gen2 EMData): per-phase registers and their totals, in Wh."""
    return {"id": 0, "a_total_act_energy": imported / 2, "a_total_act_ret_energy": returned,
            "b_total_act_energy": imported / 4, "b_total_act_ret_energy": 0.0,
            "c_total_act_energy": imported / 4, "c_total_act_ret_energy": 0.0,
            "total_act": imported, "total_act_ret": returned}


async def test_gen2_emdata_registers_feed_grid_import_and_export_energy(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    """Issue 17: the Pro 3EM's own registers (``emdata:0``: ``total_act``, ``total_act_ret``) become the site's
    grid import and export energy, from the status topic and from a NotifyStatus, beside em:0's power."""
    await probe.subscribe(TOPICS.measurement(site_id))
    prefix = f"shellypro3em-{site_id}"
    sites = {site_id: {"sources": [{"id": "grid", "driver": "shelly", "prefix": prefix}]}}
    async with running_bridge(mqtt_url, sites):
        await probe.publish(f"{prefix}/status/em:0", payload(PRO3EM_STATUS))
        await probe.publish(f"{prefix}/status/emdata:0", payload(emdata(1_234_567.8, 9_876.5)))
        msg = await probe.expect(TOPICS.measurement(site_id), where=lambda m: measurement(m).grid_import_energy
                                 is not None)
        m = measurement(msg)
        assert m.grid_import_energy is not None and m.grid_import_energy.value == 1_234_567.8
        assert m.grid_import_energy.source == "grid" and not m.grid_import_energy.derived
        assert m.grid_export_energy is not None and m.grid_export_energy.value == 9_876.5
        assert m.solar_energy is None  # no inverter: production is not a grid meter's register
        assert m.grid_power is not None and m.grid_power.value == 660.0  # em:0 still holds
        notify = {"src": prefix, "dst": f"{prefix}/events", "method": "NotifyStatus",
                  "params": {"ts": 1700000100.0, "emdata:0": emdata(1_234_600.0, 9_880.0)}}
        await probe.publish(f"{prefix}/events/rpc", payload(notify))
        later = await probe.expect(TOPICS.measurement(site_id), where=lambda m: (
            (e := measurement(m).grid_import_energy) is not None and e.value == 1_234_600.0))
        export = measurement(later).grid_export_energy
        assert export is not None and export.value == 9_880.0


async def test_a_register_going_backwards_is_dropped_and_reported_a_reset_to_zero_is_taken(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    """A lifetime register never decreases: a lower value is dropped (the reading's power still applies) and
    reported; a fall to near zero is the device resetting its counters: taken, and reported."""
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    prefix = f"shellypro3em-{site_id}"
    sites = {site_id: {"sources": [{"id": "grid", "driver": "shelly", "prefix": prefix}]}}
    async with running_bridge(mqtt_url, sites):
        await probe.publish(f"{prefix}/status/emdata:0", payload(emdata(50_000.0, 2_000.0)))
        await probe.expect(TOPICS.measurement(site_id), where=lambda m: measurement(m).grid_import_energy is not None)
        mark = probe.mark()
        notify = {"src": prefix, "dst": f"{prefix}/events", "method": "NotifyStatus",
                  "params": {"em:0": {"id": 0, "a_current": 2.0, "a_act_power": 460.0},
                             "emdata:0": emdata(40_000.0, 2_100.0)}}  # import fell by 10 kWh
        await probe.publish(f"{prefix}/events/rpc", payload(notify))
        err = (await probe.expect(TOPICS.errors(site_id), after=mark)).json()
        assert err["error"] == "energy_backwards" and "grid_import_energy" in err["message"]
        m = measurement(await probe.expect(TOPICS.measurement(site_id), after=mark))
        assert m.grid_import_energy is not None and m.grid_import_energy.value == 50_000.0  # kept, not lowered
        assert m.grid_export_energy is not None and m.grid_export_energy.value == 2_100.0  # the rest applied
        assert currents(await probe.expect(TOPICS.measurement(site_id), after=mark)) == {"A": 2.0}
        mark = probe.mark()
        await probe.publish(f"{prefix}/status/emdata:0", payload(emdata(50_010.0, 2_100.0)))  # back on track
        m = measurement(await probe.expect(TOPICS.measurement(site_id), after=mark, where=lambda r: (
            (e := measurement(r).grid_import_energy) is not None and e.value == 50_010.0)))
        mark = probe.mark()
        await probe.publish(f"{prefix}/status/emdata:0", payload(emdata(3.5, 0.0)))  # EMData.ResetCounters
        err = (await probe.expect(TOPICS.errors(site_id), after=mark)).json()
        assert err["error"] == "energy_reset"
        m = measurement(await probe.expect(TOPICS.measurement(site_id), after=mark, where=lambda r: (
            (e := measurement(r).grid_import_energy) is not None and e.value == 3.5)))
        assert m.grid_export_energy is not None and m.grid_export_energy.value == 0.0
