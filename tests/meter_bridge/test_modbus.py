"""Modbus TCP: SunSpec model discovery against a real pymodbus server, and a plain register map."""

from __future__ import annotations

from shared.broker import free_port
from shared.probe import Probe, Received

from .conftest import TOPICS, currents, measurement, running_bridge
from .peers import modbus_server, sunspec_registers, u16


async def test_sunspec_inverter_and_battery(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    registers = sunspec_registers(inverter_w=650, inverter_w_sf=1, soc=555, battery_w=-1200)
    async with modbus_server({40000: registers}) as port:
        source = {"id": "hybrid", "driver": "modbus", "host": "127.0.0.1", "port": port, "role": "solar",
                  "poll_interval": 0.1}
        async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}) as bridge:
            msg = await probe.expect(TOPICS.measurement(site_id))
            m = measurement(msg)
            assert m.solar_power is not None and m.solar_power.value == 6500.0 and not m.solar_power.derived
            assert m.battery_soc is not None and m.battery_soc.value == 55.5
            assert m.battery_power is not None and m.battery_power.value == -1200.0  # charging
            assert m.grid_current == {}  # an inverter's output currents are not the grid's
            assert m.solar_energy is None  # WH 0: "not accumulated", not a register at zero
            driver = bridge.sites[site_id].channels["hybrid"].driver
            assert [model.id for model in driver.models] == [1, 103, 802]  # type: ignore[union-attr]


async def test_sunspec_inverter_lifetime_energy_is_the_sites_solar_energy(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    """Issue 17: model 103's ``WH`` (acc32, scaled by ``WH_SF``) is the site's solar energy; it counts on."""
    await probe.subscribe(TOPICS.measurement(site_id))
    registers = sunspec_registers(inverter_w=650, inverter_w_sf=1, soc=555, battery_w=0, lifetime_wh=15_718_500,
                                  wh_sf=-1)  # 1 571 850.0 Wh, above 65535: both words count
    async with modbus_server({40000: registers}) as port:
        source = {"id": "inverter", "driver": "modbus", "host": "127.0.0.1", "port": port, "role": "solar",
                  "poll_interval": 0.1}
        async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
            m = measurement(await probe.expect(TOPICS.measurement(site_id)))
            assert m.solar_energy is not None and m.solar_energy.value == 1_571_850.0
            assert m.solar_energy.source == "inverter" and not m.solar_energy.derived
            assert m.grid_import_energy is None and m.grid_export_energy is None


async def test_plain_register_map_for_a_non_sunspec_meter(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    power = (-2500) & 0xFFFFFFFF
    block = [power >> 16, power & 0xFFFF, 1200, u16(-450), 80]  # int32 W, then 0.01 A per phase
    async with modbus_server({100: block}) as port:
        registers = [
            {"address": 100, "type": "int32", "quantity": "power"},
            {"address": 102, "type": "int16", "quantity": "current", "phase": 1, "scale": 0.01},
            {"address": 103, "type": "int16", "quantity": "current", "phase": 2, "scale": 0.01},
            {"address": 104, "type": "int16", "quantity": "current", "phase": 3, "scale": 0.01},
        ]
        source = {"id": "meter", "driver": "modbus", "host": "127.0.0.1", "port": port, "sunspec": False,
                  "registers": registers, "poll_interval": 0.1, "phase_map": {1: "B", 2: "C", 3: "A"}}
        async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
            msg = await probe.expect(TOPICS.measurement(site_id))
            assert currents(msg) == {"B": 12.0, "C": -4.5, "A": 0.8}
            m = measurement(msg)
            assert m.grid_power is not None and m.grid_power.value == -2500.0


async def test_inverter_that_goes_away_is_offline_then_back(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    await probe.subscribe(TOPICS.meter_availability(site_id, "inverter"))
    port = free_port()
    source = {"id": "inverter", "driver": "modbus", "host": "127.0.0.1", "port": port, "role": "solar",
              "poll_interval": 0.1, "timeout": 1, "backoff_initial": 0.1, "backoff_max": 0.3}
    async with running_bridge(mqtt_url, {site_id: {"sources": [source], "stale_after": 30}}):
        async with modbus_server({40000: sunspec_registers(300, 1, 500, 0)}, port=port):
            await probe.expect(TOPICS.measurement(site_id), where=lambda m: solar(m) == 3000.0)
        mark = probe.mark()
        failed = await probe.expect(TOPICS.errors(site_id), after=mark,
                                    where=lambda e: e.json()["error"] == "driver_failed")
        assert failed.json()["topic"] == f"modbus://127.0.0.1:{port}/1"
        await probe.expect(TOPICS.meter_availability(site_id, "inverter"), after=mark,
                           where=lambda m: m.text == "offline")
        async with modbus_server({40000: sunspec_registers(420, 1, 500, 0)}, port=port):
            await probe.expect(TOPICS.measurement(site_id), after=mark, where=lambda m: solar(m) == 4200.0,
                               timeout=8)
            await probe.expect(TOPICS.meter_availability(site_id, "inverter"), after=mark,
                               where=lambda m: m.text == "online")


def solar(msg: Received) -> float | None:
    reading = measurement(msg).solar_power
    return None if reading is None else reading.value
