"""The gateway's pure parts: password hashes, config checks, meter value conversion, frame checks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.ocpp_gateway.call_queue import CallQueue
from services.ocpp_gateway.config import GatewayConfig
from services.ocpp_gateway.handshake import charge_point_id, pick_subprotocol, version_of
from services.ocpp_gateway.meter import connector_meter
from services.ocpp_gateway.passwords import PasswordHashError, hash_password, main, verify_password
from services.ocpp_gateway.session import ocpp_time, parse_frame
from shared.config import AmpmqConfig, ConfigError
from shared.models import Leg

NOW = datetime(2026, 12, 1, 1, 2, 3, 456789, tzinfo=UTC)


def test_password_hash_round_trip_and_salt() -> None:
    first, second = hash_password("s3cret", n=2**10), hash_password("s3cret", n=2**10)
    assert first != second  # salted
    assert first.startswith("scrypt$1024$8$1$")
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("s3cret ", first)
    with pytest.raises(PasswordHashError):
        verify_password("x", "plain-text-password")
    with pytest.raises(ValueError):
        hash_password("")


def test_password_helper_prints_a_usable_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["horse battery"]) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_password("horse battery", printed)


def test_config_errors_name_the_field() -> None:
    def section(**values: object) -> GatewayConfig:
        return AmpmqConfig(ocpp_gateway=values).section("ocpp_gateway", GatewayConfig)

    assert section(chargers={"CP_1": {"site": "home", "auth": "none"}}).site_of("CP_1") == "home"
    assert section(default_site="garage").site_of("OTHER") == "garage"
    with pytest.raises(ConfigError, match="share the topic id"):
        section(chargers={"CP_1": {"auth": "none"}, "cp-1": {"auth": "none"}})
    with pytest.raises(ConfigError, match="password_hash"):
        section(chargers={"CP_1": {"password_hash": "hunter2"}})
    with pytest.raises(ConfigError, match="require_password"):
        section(require_password=True, chargers={"CP_1": {"auth": "none"}})
    with pytest.raises(ConfigError, match="tls_cert and tls_key"):
        section(tls_cert="/etc/cert.pem")
    with pytest.raises(ConfigError, match="id_tags"):
        section(authorize="allowlist")
    with pytest.raises(ConfigError, match="allow_unknown"):
        section(allow_unknown="yes please")
    with pytest.raises(ConfigError, match="colour"):
        section(colour="blue")
    with pytest.raises(ConfigError, match="max_call_timeout"):
        section(call_timeout=30)  # a charging profile could wait 30 s behind one hung command
    assert section(call_timeout=30, max_call_timeout=30).call_timeout == 30


def test_handshake_helpers() -> None:
    assert charge_point_id("/ocpp/CP%2F1") == "CP/1"
    assert charge_point_id("/steve/websocket/CentralSystemService/CP_7/?x=1") == "CP_7"
    assert charge_point_id("/") == ""
    assert pick_subprotocol([]) is None
    assert pick_subprotocol(["ocpp1.6", "ocpp2.0.1"]) == "ocpp2.0.1"
    assert version_of(None) == "1.6" and version_of("ocpp2.0.1") == "2.0.1"
    assert ocpp_time(NOW) == "2026-12-01T01:02:03.456Z"


def test_meter_values_1_6_units_and_latest_timestamp() -> None:
    meter, problems = connector_meter("home", "cp", 1, [
        {"timestamp": "2026-12-01T00:00:00Z", "sampled_value": [{"value": "1", "measurand": "Current.Import",
                                                                 "phase": "L1"}]},
        {"timestamp": "2026-12-01T00:00:10Z", "sampled_value": [
            {"value": "6.1", "measurand": "Current.Import", "phase": "L1"},
            {"value": "3.3", "measurand": "Power.Active.Import", "phase": "L1", "unit": "kW"},
            {"value": "3.4", "measurand": "Power.Active.Import", "phase": "L2", "unit": "kW"},
            {"value": "12345"},  # the default measurand: the energy register, in Wh
            {"value": "abcdef", "format": "SignedData", "measurand": "Energy.Active.Import.Register"},
            {"value": "NaN", "measurand": "Voltage", "phase": "L2-N"},
            {"value": "130", "measurand": "SoC"},
            {"value": "41.5", "measurand": "Temperature", "location": "Body"},
        ]},
    ], NOW)
    assert meter is not None
    assert meter.current_import == {Leg.L1: 6.1}  # only the latest timestamp counts
    assert meter.power == 6700.0  # no total: the sum of the legs
    assert meter.energy_wh == 12345.0
    assert meter.soc is None and meter.voltage == {}
    assert {s.measurand for s in meter.samples} >= {"Temperature", "SoC", "Energy.Active.Import.Register"}
    assert len(problems) == 3  # signed data, NaN, SoC out of range
    assert meter.ts == NOW
    # the charger's own time of the values, beside when we got them: how far its clock is off shows
    assert meter.charger_time == datetime(2026, 12, 1, 0, 0, 10, tzinfo=UTC)


def test_meter_values_2_0_1_multiplier() -> None:
    meter, problems = connector_meter("home", "cp", 2, [{"timestamp": "t", "sampled_value": [
        {"value": 12.5, "measurand": "Energy.Active.Import.Register",
         "unit_of_measure": {"unit": "kWh", "multiplier": 1}},
        {"value": 230, "measurand": "Voltage", "phase": "L3-N", "unit_of_measure": {"unit": "V"}},
        {"value": 11000, "measurand": "Power.Active.Import"},
    ]}], NOW, transaction_id="tx")
    assert meter is not None and not problems
    assert (meter.energy_wh, meter.voltage, meter.power, meter.transaction_id) == (
        125000.0, {Leg.L3: 230.0}, 11000.0, "tx")
    assert meter.charger_time is None  # "t" is no time
    assert connector_meter("home", "cp", 1, [], NOW) == (None, [])


@pytest.mark.parametrize(("frame", "expected"), [
    ('[2, "a", "Heartbeat", {}]', (None, "a", True)),
    ('[3, "a", {}]', (None, "a", False)),
    ('[4, "a", "GenericError", "", {}]', (None, "a", False)),
    ('[3, "a"]', ("message type 3 has 3 elements, not 2", "a", False)),
    ("[]", ("an OCPP-J message is a JSON array", None, True)),
    ('[true, "a"]', ("message type id must be a number", "a", True)),
    ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', ("message id is longer than 36 characters", "x" * 37, True)),
    ('[2, "a", 5, {}]', ("action must be a string", "a", True)),
    ('[2, "a", "Heartbeat", []]', ("payload must be a JSON object", "a", True)),
])
def test_frame_checks(frame: str, expected: tuple[str | None, str | None, bool]) -> None:
    assert parse_frame(frame)[1:] == expected


def test_hash_password_command_registers_with_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from services.ocpp_gateway import passwords

    parser = argparse.ArgumentParser()
    passwords.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["hash-password", "pw 123"])
    assert args.handler(args, None) == 0
    assert verify_password("pw 123", capsys.readouterr().out.strip())


async def test_call_queue_serves_charging_profiles_first_and_survives_cancelled_waiters() -> None:
    queue = CallQueue()
    order: list[str] = []
    release = asyncio.Event()

    async def caller(name: str, urgent: bool) -> None:
        async with queue.turn(urgent):
            order.append(name)
            if name == "in-flight":
                await release.wait()

    tasks = [asyncio.create_task(caller("in-flight", False))]
    await asyncio.sleep(0)
    for name, urgent in [("data-1", False), ("gone", True), ("data-2", False), ("profile-1", True),
                         ("profile-2", True)]:
        tasks.append(asyncio.create_task(caller(name, urgent)))
        await asyncio.sleep(0)
    assert queue.waiting == 5
    tasks[2].cancel()  # its timeout ran out while it waited: it leaves the line
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == ["in-flight", "profile-1", "profile-2", "data-1", "data-2"]
    async with queue.turn(False):  # free again
        assert queue.waiting == 0
