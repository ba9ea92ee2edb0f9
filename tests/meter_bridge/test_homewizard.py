"""HomeWizard P1: the bridge polls a real HTTP server serving HomeWizard-shaped JSON."""

from __future__ import annotations

import pytest

from shared.probe import Probe

from .conftest import TOPICS, currents, measurement, running_bridge
from .peers import HomeWizardPeer

P1_DATA = {
    "wifi_ssid": "home", "wifi_strength": 80, "smr_version": 50, "meter_model": "ISKRA 2M550T-101",
    "total_power_import_kwh": 1234.5, "total_power_export_kwh": 12.3,
    "active_power_w": 2070.0, "active_power_l1_w": 2300.0, "active_power_l2_w": -460.0, "active_power_l3_w": 230.0,
    "active_voltage_l1_v": 230.0, "active_voltage_l2_v": 230.0, "active_voltage_l3_v": 230.0,
    "active_current_l1_a": 10.0, "active_current_l2_a": 2.0, "active_current_l3_a": 1.0,
}


async def test_polled_p1_meter_feeds_the_measurement_and_follows_changes(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.meter_availability(site_id, "p1"))
    peer = await HomeWizardPeer(dict(P1_DATA)).start()
    try:
        source = {"id": "p1", "driver": "homewizard", "url": peer.url, "poll_interval": 0.1}
        async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
            msg = await probe.expect(TOPICS.measurement(site_id))
            assert currents(msg) == {"A": 10.0, "B": -2.0, "C": 1.0}
            m = measurement(msg)
            assert m.grid_power is not None and m.grid_power.value == 2070.0
            # issue 17: the meter's registers, kWh -> Wh
            assert m.grid_import_energy is not None and m.grid_import_energy.value == pytest.approx(1_234_500.0)
            assert m.grid_export_energy is not None and m.grid_export_energy.value == pytest.approx(12_300.0)
            assert (await probe.expect(TOPICS.meter_availability(site_id, "p1"))).text == "online"
            peer.data["active_power_l1_w"] = -4600.0  # the meter's total follows its phases, as on the device
            peer.data["active_power_w"] = -4600.0 - 460.0 + 230.0
            peer.data["active_current_l1_a"] = 20.0
            later = await probe.expect(TOPICS.measurement(site_id), where=lambda m: currents(m).get("A") == -20.0)
            assert measurement(later).grid_current  # the new reading, polled
            assert peer.requests >= 2
    finally:
        await peer.stop()
