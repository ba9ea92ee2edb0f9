"""DSMR P1 telegrams over a real TCP socket (as ser2net serves them): a valid one is applied, one with a
bad CRC is reported and not applied."""

from __future__ import annotations

import asyncio
import os

import pytest
from dsmr_parser.parsers import TelegramParser  # type: ignore[import-untyped]

from shared.probe import Probe

from .conftest import TOPICS, currents, measurement, running_bridge
from .peers import telegram_server

BODY = [
    "/ISK5\\2M550T-1012",
    "",
    "1-3:0.2.8(50)",
    "0-0:1.0.0(260101120000W)",
    "0-0:96.1.1(4530303434303037333832323436303139)",
    "1-0:1.8.1(002126.372*kWh)",
    "1-0:1.8.2(002735.153*kWh)",
    "1-0:2.8.1(000010.000*kWh)",
    "1-0:2.8.2(000020.000*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.7.0({usage}*kW)",
    "1-0:2.7.0({delivery}*kW)",
    "1-0:32.7.0(230.0*V)",
    "1-0:52.7.0(231.0*V)",
    "1-0:72.7.0(229.0*V)",
    "1-0:31.7.0({i1}*A)",
    "1-0:51.7.0(002*A)",
    "1-0:71.7.0(001*A)",
    "1-0:21.7.0({p1}*kW)",
    "1-0:41.7.0(00.000*kW)",
    "1-0:61.7.0(00.229*kW)",
    "1-0:22.7.0(00.000*kW)",
    "1-0:42.7.0(00.462*kW)",
    "1-0:62.7.0(00.000*kW)",
]


def telegram(i1: str = "005", p1: str = "01.150", usage: str = "00.917", delivery: str = "00.000",
             bad_crc: bool = False) -> str:
    text = "\r\n".join(BODY).format(i1=i1, p1=p1, usage=usage, delivery=delivery) + "\r\n!"
    crc = TelegramParser.crc16(text)
    if bad_crc:
        crc ^= 0x1234
    return f"{text}{crc:04X}\r\n"


async def test_valid_telegram_applied_bad_crc_reported_and_dropped(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    good = telegram()
    corrupted = telegram(i1="040", p1="09.200", bad_crc=True)  # would claim 40 A on L1
    async with telegram_server([good, corrupted]) as server:
        port = server.port
        source = {"id": "p1", "driver": "dsmr", "tcp": f"127.0.0.1:{port}"}
        async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
            msg = await probe.expect(TOPICS.measurement(site_id))
            # L1 imports 1150 W at 5 A; L2 exports 462 W at 2 A; L3 imports 229 W at 1 A
            assert currents(msg) == {"A": 5.0, "B": -2.0, "C": 1.0}
            m = measurement(msg)
            assert m.grid_power is not None and m.grid_power.value == 917.0
            assert m.voltage[next(iter(m.voltage))].value == 230.0
            # issue 17: import 1.8.1 + 1.8.2, export 2.8.1 + 2.8.2 (kWh -> Wh)
            assert m.grid_import_energy is not None
            assert m.grid_import_energy.value == pytest.approx((2126.372 + 2735.153) * 1000)
            assert m.grid_export_energy is not None and m.grid_export_energy.value == pytest.approx(30_000.0)
            err = await probe.expect(TOPICS.errors(site_id), where=lambda e: e.json()["error"] == "crc")
            assert err.json()["topic"] == f"tcp://127.0.0.1:{port}" and "CRC" in err.json()["message"]
            assert all(currents(x)["A"] == 5.0 for x in probe.on(TOPICS.measurement(site_id)))


async def test_lost_connection_is_reconnected_with_backoff(mqtt_url: str, probe: Probe, site_id: str) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    async with telegram_server([telegram()], hang_up=True) as server:
        source = {"id": "p1", "driver": "dsmr", "tcp": f"127.0.0.1:{server.port}", "backoff_initial": 0.1,
                  "backoff_max": 0.2}
        async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
            await probe.expect(TOPICS.measurement(site_id), where=lambda m: currents(m).get("A") == 5.0)
            failed = await probe.expect(TOPICS.errors(site_id), where=lambda e: e.json()["error"] == "driver_failed")
            assert "connection closed" in failed.json()["message"]
            mark = probe.mark()
            await probe.expect(TOPICS.measurement(site_id), after=mark)  # read again after reconnecting
            assert server.connections >= 2


async def test_telegrams_from_a_serial_port(mqtt_url: str, probe: Probe, site_id: str) -> None:
    """The serial path, on a pseudo-terminal: the bridge opens the tty as it would a P1 USB cable."""
    await probe.subscribe(TOPICS.measurement(site_id))
    master, slave = os.openpty()
    try:
        source = {"id": "p1", "driver": "dsmr", "serial": os.ttyname(slave), "version": "V5"}
        async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
            for _ in range(50):  # as a meter does: a telegram every so often, until one is read
                os.write(master, telegram(i1="007", p1="01.610").encode("ascii"))
                if probe.on(TOPICS.measurement(site_id)):
                    break
                await asyncio.sleep(0.1)
            msg = await probe.expect(TOPICS.measurement(site_id))
            assert currents(msg)["A"] == 7.0
    finally:
        os.close(master)
        os.close(slave)


async def test_a_line_that_talks_but_sends_no_telegram_counts_as_gone(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.errors(site_id))
    noise = ["\x00\x7f garbage at the wrong baud rate \r\n"] * 60  # 3 s of noise, one line per 50 ms
    async with telegram_server(noise) as server:
        source = {"id": "p1", "driver": "dsmr", "tcp": f"127.0.0.1:{server.port}", "read_timeout": 0.5}
        async with running_bridge(mqtt_url, {site_id: {"sources": [source]}}):
            failed = await probe.expect(TOPICS.errors(site_id), where=lambda e: e.json()["error"] == "driver_failed")
            assert "no complete telegram" in failed.json()["message"]
