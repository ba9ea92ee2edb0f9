"""The generic MQTT JSON driver, and plausibility through the bridge: NaN and 10 000 A are rejected."""

from __future__ import annotations

from shared.probe import Probe

from .conftest import TOPICS, currents, measurement, payload, running_bridge


def json_source(site_id: str) -> dict[str, object]:
    return {
        "id": "ha", "driver": "mqtt_json",
        "values": [
            {"topic": f"home/{site_id}/grid", "path": "phases.0.amps", "unit": "A", "phase": 1},
            {"topic": f"home/{site_id}/grid", "path": "phases.1.amps", "unit": "A", "phase": 2},
            {"topic": f"home/{site_id}/grid", "path": "total", "unit": "kW"},
            {"topic": f"home/{site_id}/pv", "unit": "W", "quantity": "solar_power"},
            {"topic": f"home/{site_id}/soc", "unit": "%"},
        ],
    }


def l1_source(site_id: str) -> dict[str, object]:
    """One value: phase 1's amps as a plain number."""
    return {"id": "ha", "driver": "mqtt_json", "values": [{"topic": f"home/{site_id}/l1", "unit": "A", "phase": 1}]}


async def test_json_paths_units_and_raw_payloads(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    async with running_bridge(mqtt_url, {site_id: {"sources": [json_source(site_id)]}}):
        await probe.publish(f"home/{site_id}/grid", payload({"phases": [{"amps": 6.5}, {"amps": -1.5}], "total": 1.2}))
        await probe.publish(f"home/{site_id}/pv", "2400")
        await probe.publish(f"home/{site_id}/soc", "81.5")
        msg = await probe.expect(
            TOPICS.measurement(site_id),
            where=lambda m: measurement(m).battery_soc is not None and measurement(m).solar_power is not None,
        )
        m = measurement(msg)
        assert currents(msg) == {"A": 6.5, "B": -1.5}
        assert m.grid_power is not None and m.grid_power.value == 1200.0
        assert m.solar_power is not None and m.solar_power.value == 2400.0 and not m.solar_power.derived
        assert m.battery_soc is not None and m.battery_soc.value == 81.5 and m.battery_soc.source == "ha"


async def test_nan_and_ten_thousand_amps_are_rejected_and_not_applied(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    source = l1_source(site_id)
    async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
        await probe.publish(f"home/{site_id}/l1", "12.0")
        await probe.expect(TOPICS.measurement(site_id), where=lambda m: currents(m) == {"A": 12.0})
        mark = probe.mark()
        await probe.publish(f"home/{site_id}/l1", "NaN")
        err = (await probe.expect(TOPICS.errors(site_id), after=mark)).json()
        assert err["error"] == "implausible" and "non-finite" in err["message"] and err["topic"] == f"home/{site_id}/l1"
        await probe.publish(f"home/{site_id}/l1", "10000")
        err = (await probe.expect(TOPICS.errors(site_id), after=mark, where=lambda m: "10000" in m.text)).json()
        assert err["error"] == "implausible" and "beyond the plausible" in err["message"]
        await probe.publish(f"home/{site_id}/l1", "13.0")  # a good value afterwards goes through
        await probe.expect(TOPICS.measurement(site_id), after=mark, where=lambda m: currents(m) == {"A": 13.0})
        published = [currents(m) for m in probe.on(TOPICS.measurement(site_id), after=mark)]
        assert all(c == {"A": 13.0} for c in published), published  # neither NaN nor 10 000 A was applied


async def test_a_jump_the_config_rules_out_is_rejected_until_it_holds(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    source = l1_source(site_id)
    site = {"sources": [source], "plausibility": {"max_current_step": 20}}
    async with running_bridge(mqtt_url, {site_id: site}):
        await probe.publish(f"home/{site_id}/l1", "5")
        await probe.expect(TOPICS.measurement(site_id), where=lambda m: currents(m) == {"A": 5.0})
        mark = probe.mark()
        await probe.publish(f"home/{site_id}/l1", "80")
        err = (await probe.expect(TOPICS.errors(site_id), after=mark)).json()
        assert err["error"] == "implausible" and "jump" in err["message"]
        await probe.publish(f"home/{site_id}/l1", "82")  # the new level holds: a real change
        await probe.expect(TOPICS.measurement(site_id), after=mark, where=lambda m: currents(m) == {"A": 82.0})
        assert all(currents(m) != {"A": 80.0} for m in probe.on(TOPICS.measurement(site_id), after=mark))


async def test_energy_registers_by_mapping(mqtt_url: str, probe: Probe, site_id: str) -> None:
    """Issue 17: Wh/kWh values are energy registers: the role's forward one (grid import), ``export_energy``
    and ``solar_energy`` by ``quantity``."""
    await probe.subscribe(TOPICS.measurement(site_id))
    source = {"id": "ha", "driver": "mqtt_json", "values": [
        {"topic": f"home/{site_id}/meter", "path": "energy.import", "unit": "kWh"},
        {"topic": f"home/{site_id}/meter", "path": "energy.export", "unit": "kWh", "quantity": "export_energy"},
        {"topic": f"home/{site_id}/pv_total", "unit": "Wh", "quantity": "solar_energy"},
    ]}
    async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
        await probe.publish(f"home/{site_id}/meter", payload({"energy": {"import": 4321.5, "export": 12.25}}))
        await probe.publish(f"home/{site_id}/pv_total", "987654")
        msg = await probe.expect(TOPICS.measurement(site_id), where=lambda m: measurement(m).solar_energy is not None
                                 and measurement(m).grid_import_energy is not None)
        m = measurement(msg)
        assert m.grid_import_energy is not None and m.grid_import_energy.value == 4_321_500.0
        assert m.grid_export_energy is not None and m.grid_export_energy.value == 12_250.0
        assert m.solar_energy is not None and m.solar_energy.value == 987_654.0
