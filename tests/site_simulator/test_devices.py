"""The simulated devices speak their protocols as the real services read them: the Pro 3EM status and
the SunSpec registers through the meter bridge's own drivers, the chargers through the real gateway (a
SetChargingProfile command on MQTT changes what the car is offered; meter values come back per phase)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymodbus.client import AsyncModbusTcpClient

from services.meter_bridge.config import ModbusSource, ShellySource
from services.meter_bridge.drivers.modbus import ModbusDriver, decode_inverter
from services.meter_bridge.drivers.shelly import ShellyDriver
from services.meter_bridge.sample import Sample
from services.ocpp_gateway.config import GatewayConfig
from services.ocpp_gateway.gateway import Gateway
from services.site_simulator.charge_point import ChargerDevice
from services.site_simulator.scenario import ChargerSpec, EvSpec
from services.site_simulator.shelly import EnergyRegisters, pro3em_status
from services.site_simulator.site import ChargerPlug, SiteState
from services.site_simulator.sunspec import ProductionCounter, SunSpecServer, inverter_registers
from shared.clock import SYSTEM_CLOCK
from shared.models import ConnectorMeter, Leg, OcppCommand, OcppResult
from shared.mqtt import Runtime, serving
from shared.probe import Probe
from shared.topics import Topics

NOW = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


def state() -> SiteState:
    return SiteState(at=NOW, t=0.0, grid_current={"A": 12.5, "B": -3.0, "C": 0.4},
                     voltage={"A": 231.0, "B": 229.5, "C": 230.0}, solar=5430.0, battery_power=-1800.0,
                     battery_soc=64.2)


def test_pro3em_status_reads_back_through_the_meter_bridge_driver() -> None:
    driver = ShellyDriver(ShellySource(id="grid", driver="shelly", prefix="shellypro3em-x"))
    sample = driver.parse("shellypro3em-x/status/em:0", json.dumps(pro3em_status(state())).encode())
    assert sample is not None
    assert sample.current == {1: 12.5, 2: 3.0, 3: 0.4}  # unsigned on the wire, like the device
    assert sample.power[2] == pytest.approx(-3.0 * 229.5)  # the sign travels with the power
    assert sample.voltage[1] == 231.0


def test_pro3em_energy_registers_count_import_and_export_and_read_back_through_the_driver() -> None:
    """The simulated meter counts its own registers (EMData: per phase and total, Wh) from its power, as the
    device does; the bridge's driver reads ``total_act`` / ``total_act_ret`` from them."""
    registers = EnergyRegisters()
    status = pro3em_status(state())
    registers.count(status, 0.0)
    registers.count(status, 3600.0)  # one hour at that power
    emdata = registers.status()
    assert emdata["a_total_act_energy"] == pytest.approx(12.5 * 231.0, abs=0.01)  # imported on A
    assert emdata["b_total_act_ret_energy"] == pytest.approx(3.0 * 229.5, abs=0.01)  # exported on B
    assert emdata["b_total_act_energy"] == 0.0
    assert emdata["total_act"] == pytest.approx(12.5 * 231.0 + 0.4 * 230.0, abs=0.02)
    assert emdata["total_act_ret"] == pytest.approx(3.0 * 229.5, abs=0.01)
    driver = ShellyDriver(ShellySource(id="grid", driver="shelly", prefix="shellypro3em-x"))
    sample = driver.parse("shellypro3em-x/status/emdata:0", json.dumps(emdata).encode())
    assert sample is not None
    assert (sample.energy_forward, sample.energy_reverse) == (emdata["total_act"], emdata["total_act_ret"])


def test_sunspec_inverter_counts_its_production_in_wh_and_the_driver_reads_it() -> None:
    """The simulated inverter's model 103 ``WH`` register grows with what it produced (the site's solar energy)."""
    counter = ProductionCounter()
    counter.count(state())
    later = SiteState(at=NOW, t=1800.0, solar=5430.0)
    assert counter.count(later) == pytest.approx(5430.0 / 2)  # half an hour at 5430 W
    registers = inverter_registers(later, 100_000.0)
    start = 2 + 2 + 66 + 2  # marker, common model 1 with its header, model 103's [id, length] header
    assert registers[start - 2] == 103
    sample = Sample()
    decode_inverter(registers[start:start + 25], sample)
    assert sample.energy_forward == 100_000.0  # above 65535: both words


async def test_sunspec_battery_and_inverter_read_back_through_the_meter_bridge_driver() -> None:
    server = await SunSpecServer(state).start()
    try:
        for unit, check in ((1, "battery"), (2, "solar")):
            source = ModbusSource(id=check, driver="modbus", role=check, host="127.0.0.1", port=server.port,
                                  unit=unit)
            driver = ModbusDriver(source, SYSTEM_CLOCK)
            client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=3)
            assert await client.connect()
            try:
                driver.models = await driver.discover(client)
                sample = await driver.poll(client)
            finally:
                client.close()
            if check == "battery":
                assert [m.id for m in driver.models] == [1, 802]
                assert sample.battery_soc == pytest.approx(64.2)
                assert sample.battery_power == pytest.approx(-1800.0)
            else:
                assert [m.id for m in driver.models] == [1, 103]
                assert sample.total_power == pytest.approx(5430.0)
                assert sample.current[1] == pytest.approx(5430.0 / 3 / 231.0, abs=0.01)
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def gateway(mqtt_url: str, site: str, cp_id: str) -> AsyncIterator[Gateway]:
    config = GatewayConfig(host="127.0.0.1", port=0, default_site=site,
                           chargers={cp_id: {"site": site, "auth": "none"}})
    runtime = Runtime("ocpp-gateway", mqtt_url, Topics())
    gw = Gateway(config, runtime, SYSTEM_CLOCK)
    async with serving(runtime), gw.running():
        yield gw


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_charger_obeys_a_profile_sent_through_the_gateway_and_meters_per_phase(
        mqtt_url: str, site_id: str, version: str) -> None:
    topics = Topics()
    spec = ChargerSpec(id="cp-sim", ocpp=version, max_current=16.0,
                       ev=EvSpec(phases=3, arrives=NOW.time(), lag=(0.0, 0.0)))
    plug = ChargerPlug(spec, NOW - timedelta(hours=10), seed=1)
    async with gateway(mqtt_url, site_id, "CP_SIM") as gw, Probe(mqtt_url) as probe:
        await probe.subscribe(topics.charger_filter(site=site_id))
        device = ChargerDevice(plug, gw.url, SYSTEM_CLOCK, meter_interval=1.0)
        device.check_interval = 0.2
        task = asyncio.ensure_future(device.run())
        try:
            await probe.expect(topics.charger_boot(site_id, "cp-sim"), timeout=10)
            before = device.control(datetime.now(UTC))
            assert before == 16.0  # no profile yet: the charger offers its rating
            payload = ({"connectorId": 1, "csChargingProfiles": {
                "chargingProfileId": 11, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Relative", "chargingSchedule": {
                    "duration": 600, "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 9.5}]}}}
                       if version == "1.6" else {"evseId": 1, "chargingProfile": {
                "id": 11, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Relative", "chargingSchedule": [{
                    "id": 1, "duration": 600, "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 9.5}]}]}})
            mark = probe.mark()
            await probe.publish(topics.charger_command(site_id, "cp-sim", "SetChargingProfile"),
                                OcppCommand(request_id="r1", payload=payload))
            answer = await probe.expect(topics.charger_result(site_id, "cp-sim", "SetChargingProfile"),
                                        timeout=10, after=mark)
            result = answer.model(OcppResult)
            assert result.ok and result.response == {"status": "Accepted"}
            assert device.control(datetime.now(UTC)) == 9.5
            plug.step(NOW, 1.0, 1.0, 230.0)  # the car plugs in and follows the pilot
            plug.step(NOW + timedelta(seconds=1), 2.0, 1.0, 230.0)
            assert plug.legs == {Leg.L1: 9.5, Leg.L2: 9.5, Leg.L3: 9.5}
            device.wake()
            meter = await probe.expect(topics.connector_meter(site_id, "cp-sim", 1), timeout=10, after=mark,
                                       where=lambda m: m.model(ConnectorMeter).current_import.get(Leg.L2) == 9.5)
            reading = meter.model(ConnectorMeter)
            assert reading.current_offered == 9.5
            assert set(reading.current_import) == {Leg.L1, Leg.L2, Leg.L3}
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
