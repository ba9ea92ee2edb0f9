"""Tasmota ENERGY (single and three phase) and SML telemetry through a real broker."""

from __future__ import annotations

from shared.probe import Probe

from .conftest import TOPICS, currents, measurement, payload, running_bridge


async def test_three_phase_energy_arrays(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    device = f"tasmota_{site_id}"
    source = {"id": "grid", "driver": "tasmota", "device": device}
    async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
        sensor = {"Time": "2026-01-01T12:00:00", "ENERGY": {
            "Total": 1234.5, "Power": [1150, -460, 0], "Voltage": [230, 230, 231], "Current": [5.0, 2.0, 0.0]}}
        await probe.publish(f"tele/{device}/SENSOR", payload(sensor))
        msg = await probe.expect(TOPICS.measurement(site_id))
        assert currents(msg) == {"A": 5.0, "B": -2.0, "C": 0.0}
        m = measurement(msg)
        assert m.grid_power is not None and m.grid_power.value == 690.0
        assert m.grid_import_energy is not None and m.grid_import_energy.value == 1_234_500.0  # Total, kWh
        assert m.grid_export_energy is None  # no Export on this module


async def test_energy_total_and_export_registers(mqtt_url: str, probe: Probe, site_id: str) -> None:
    """Issue 17: ``ENERGY.Total`` (kWh imported) and ``ENERGY.Export`` (kWh exported, on modules that measure
    it) are the grid energy registers."""
    await probe.subscribe(TOPICS.measurement(site_id))
    device = f"tasmota_{site_id}"
    source = {"id": "grid", "driver": "tasmota", "device": device}
    async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
        sensor = {"Time": "2026-01-01T12:00:00", "ENERGY": {
            "TotalStartTime": "2025-01-01T00:00:00", "Total": 812.345, "Yesterday": 4.2, "Today": 1.1,
            "Export": 97.5, "Power": -350, "Voltage": 231, "Current": 1.6}}
        await probe.publish(f"tele/{device}/SENSOR", payload(sensor))
        m = measurement(await probe.expect(TOPICS.measurement(site_id)))
        assert m.grid_import_energy is not None and m.grid_import_energy.value == 812_345.0
        assert m.grid_export_energy is not None and m.grid_export_energy.value == 97_500.0


async def test_single_phase_plug_as_solar_source(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    device = f"pvplug_{site_id}"
    sources = [{"id": "balcony-pv", "driver": "tasmota", "device": device, "role": "solar", "invert": True}]
    async with running_bridge(mqtt_url, {site_id: {"sources": sources}}):
        sensor = {"ENERGY": {"Power": -600, "Voltage": 231, "Current": 2.6}}
        await probe.publish(f"tele/{device}/SENSOR", payload(sensor))
        m = measurement(await probe.expect(TOPICS.measurement(site_id)))
        assert m.solar_power is not None and m.solar_power.value == 600.0 and not m.solar_power.derived
        assert m.grid_current == {} and m.grid_power is None


async def test_sml_meter_with_per_phase_power(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    device = f"sml_{site_id}"
    sml = {"meter": "MT631", "power": "Power_curr", "power_phases": ["Power_L1", "Power_L2", "Power_L3"]}
    async with running_bridge(mqtt_url, {site_id: {"sources": [
        {"id": "grid", "driver": "tasmota", "device": device, "sml": sml}]}}):
        await probe.publish(f"tele/{device}/SENSOR", payload({"Time": "x", "MT631": {
            "Total_in": 4711.2, "Power_curr": -230, "Power_L1": 460, "Power_L2": -690, "Power_L3": 0}}))
        msg = await probe.expect(TOPICS.measurement(site_id))
        assert currents(msg) == {"A": 2.0, "B": -3.0, "C": 0.0}
        m = measurement(msg)
        assert all(r.derived for r in m.grid_current.values())  # from power at the nominal 230 V
        assert m.grid_power is not None and m.grid_power.value == -230.0
        assert m.solar_power is not None and m.solar_power.value == 230.0 and m.solar_power.derived
