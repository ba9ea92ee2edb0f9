# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""Safe by default: every configured charger authenticates (or says ``auth: none``), failed logins are
throttled per id and per address in bounded tables before scrypt runs, an unauthenticated connection never
replaces an authenticated session, and chargers may authenticate with a client certificate (profile 3)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from services.ocpp_gateway import handshake as handshake_module
from services.ocpp_gateway.config import GatewayConfig
from services.ocpp_gateway.handshake import MAX_WAITING_CHECKS, THROTTLE_FREE_FAILURES
from services.ocpp_gateway.passwords import DEFAULT_N, hash_password, verify_password
from services.ocpp_gateway.throttle import LoginThrottle
from shared.config import AmpmqConfig, ConfigError, load_config
from shared.models import ErrorReport
from shared.probe import Probe
from shared.topics import Topics
from tests.charge_point_loop import reading

from .conftest import Client16, GatewayFactory, SteppedClock, basic_auth, charger

ROOT = Path(__file__).resolve().parents[2]
CHEAP = {"n": 2**10}  # a cheap hash keeps the suite fast; production hashes use the default cost
BOOT = call16.BootNotification(charge_point_vendor="A", charge_point_model="B")


def section(**values: object) -> GatewayConfig:
    return AmpmqConfig(ocpp_gateway=values).section("ocpp_gateway", GatewayConfig)


async def status_of(url: str, **kwargs: Any) -> int:
    """The HTTP status a handshake is refused with (101 when it is let in)."""
    try:
        async with connect(url, open_timeout=5, subprotocols=["ocpp1.6"], **kwargs):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def test_a_charger_needs_a_password_unless_its_config_says_auth_none() -> None:
    with pytest.raises(ConfigError, match="ampmq hash-password"):
        section(chargers={"CP_1": {"site": "home"}})
    assert section(chargers={"CP_1": {"auth": "none"}}).chargers["CP_1"].auth == "none"
    with pytest.raises(ConfigError, match="contradict"):
        section(chargers={"CP_1": {"auth": "none", "password_hash": hash_password("x", **CHEAP)}})
    with pytest.raises(ConfigError, match="tls_client_ca"):
        section(chargers={"CP_1": {"auth": "certificate"}})
    with pytest.raises(ConfigError, match="tls_client_ca needs tls_cert"):
        section(tls_client_ca="/etc/ca.pem")


def test_the_shipped_config_is_safe() -> None:
    config = load_config(ROOT / "config" / "ampmq.yaml").section("ocpp_gateway", GatewayConfig)
    assert config.allow_unknown is False
    assert config.chargers
    for entry in config.chargers.values():
        assert entry.auth == "password" and entry.password_hash is not None
        assert entry.password_hash.startswith(f"scrypt${DEFAULT_N}$8$1$")


def test_new_hashes_follow_owasp_and_old_ones_keep_working() -> None:
    assert DEFAULT_N >= 2**17  # OWASP Password Storage Cheat Sheet: scrypt N=2^17, r=8, p=1
    new = hash_password("correct horse")
    assert new.startswith("scrypt$131072$8$1$") and verify_password("correct horse", new)
    old = hash_password("correct horse", n=2**14)  # what the gateway made before
    assert old.startswith("scrypt$16384$8$1$") and verify_password("correct horse", old)
    assert not verify_password("wrong horse", old)


def test_auth_none_is_a_warning_at_start_once_per_charger(caplog: pytest.LogCaptureFixture) -> None:
    config = section(chargers={"OPEN_1": {"auth": "none"}, "OPEN_2": {"auth": "none"},
                               "SAFE": {"password_hash": hash_password("x", **CHEAP)}})
    with caplog.at_level(logging.WARNING, logger="ampmq.ocpp-gateway.handshake"):
        handshake_module.Handshake(config, lambda *_: None, lambda _: None)
    warned = [r.getMessage() for r in caplog.records if "auth: none" in r.getMessage()]
    assert len(warned) == 2 and any("OPEN_1" in w for w in warned) and any("OPEN_2" in w for w in warned)


def test_the_throttle_doubles_forgets_and_stays_bounded() -> None:
    clock = SteppedClock()
    throttle = LoginThrottle(clock, max_keys=3, free_failures=2, base_delay=1, max_delay=8, forget_after=100)
    assert [throttle.failed("a") for _ in range(7)] == [0, 0, 1, 2, 4, 8, 8]
    assert throttle.locked_for("a") == 8
    clock.seconds += 5
    assert throttle.locked_for("a") == 3
    throttle.succeeded("a")
    assert throttle.locked_for("a") == 0 and len(throttle) == 0
    for key in "bcdef":
        throttle.failed(key)
    assert len(throttle) == 3  # the least recently used keys were dropped
    assert throttle.failed("f") == 0 and throttle.failed("f") == 1
    clock.seconds += 102
    assert throttle.locked_for("f") == 0 and throttle.failed("f") == 0  # quiet long enough: afresh


async def test_wrong_passwords_are_throttled_before_scrypt_runs(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    clock = SteppedClock()  # time stands still: a lockout lasts until the test moves the clock
    chargers = {"CP1": {"site": site_id, "password_hash": hash_password("right horse", **CHEAP)}}
    async with run_gateway(chargers=chargers, clock=clock) as gateway:
        shake, url = gateway.handshake, f"{gateway.url}/CP1"
        async with charger(gateway, "CP1", password="right horse") as cp:
            await cp.call(BOOT)
        assert shake.password_checks == 1
        wrong = basic_auth("CP1", "wrong horse")
        statuses = [await status_of(url, additional_headers=wrong) for _ in range(300)]
        assert statuses == [401] * (THROTTLE_FREE_FAILURES + 1) + [429] * (300 - THROTTLE_FREE_FAILURES - 1)
        assert shake.password_checks == 1 + THROTTLE_FREE_FAILURES + 1  # locked-out attempts ran no scrypt
        report = await probe.expect(topics.errors(site_id), where=lambda m: m.json()["error"] == "login_throttled")
        assert "CP1" in report.model(ErrorReport).message
        # the charger itself, with the password that already passed, still gets in while its id is locked out
        async with charger(gateway, "CP1", password="right horse") as cp:
            assert (await cp.call(BOOT)).status == "Accepted"
        with pytest.raises(InvalidStatus) as locked:
            async with connect(url, open_timeout=5, additional_headers=wrong):
                pass
        assert locked.value.response.headers["Retry-After"] == "1"
        clock.seconds += 1.5  # the lockout is over: one more guess is checked, and the next lockout doubles
        assert await status_of(url, additional_headers=wrong) == 401
        assert shake.password_checks == 1 + THROTTLE_FREE_FAILURES + 2
        assert shake.failed_by_id.locked_for("CP1") == 2
        assert await status_of(url, additional_headers=wrong) == 429
        scrypt_threads = [t for t in threading.enumerate() if t.name.startswith("ocpp-password-check")]
        assert len(scrypt_threads) == 1  # one thread runs scrypt, whatever the storm


async def test_failed_logins_from_many_addresses_stay_in_bounded_tables(
    run_gateway: GatewayFactory, site_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handshake_module, "THROTTLED_ADDRESSES", 8)
    chargers = {f"CP{i}": {"site": site_id, "password_hash": hash_password(f"pw {i}", **CHEAP)} for i in range(50)}
    async with run_gateway(chargers=chargers, clock=SteppedClock()) as gateway:
        shake = gateway.handshake
        statuses = []
        for attempt in range(200):  # 100 addresses (all of 127/8 is loopback), each id guessed 4 times
            address = f"127.0.2.{attempt % 100 + 1}"
            statuses.append(await status_of(f"{gateway.url}/CP{attempt % 50}", local_addr=(address, 0),
                                            additional_headers=basic_auth(f"CP{attempt % 50}", "guess")))
        assert statuses == [401] * 200
        assert len(shake.failed_by_address) == 8  # not 100: the least recently seen addresses were dropped
        assert len(shake.failed_by_id) == 50  # never more than the configured chargers
        assert shake.failed_by_address.locked_for("127.0.2.100") == 0  # 2 failures each: not locked yet
        assert shake.failed_by_id.locked_for("CP0") == 1  # the 4th failure locks the id out


async def test_parallel_guesses_wait_their_turn_in_a_bounded_queue(run_gateway: GatewayFactory, site_id: str) -> None:
    chargers = {"CP1": {"site": site_id, "password_hash": hash_password("right horse", **CHEAP)}}
    async with run_gateway(chargers=chargers, clock=SteppedClock()) as gateway:
        shake, url = gateway.handshake, f"{gateway.url}/CP1"
        await shake._one_check_at_a_time.acquire()  # as if a slow check were running
        try:
            guesses = [asyncio.create_task(status_of(url, local_addr=(f"127.0.3.{i + 1}", 0),
                                                     additional_headers=basic_auth("CP1", f"guess {i}")))
                       for i in range(MAX_WAITING_CHECKS)]
            async with asyncio.timeout(5):
                while shake._waiting_checks < MAX_WAITING_CHECKS:
                    await asyncio.sleep(0.01)
            assert await status_of(url, additional_headers=basic_auth("CP1", "one too many")) == 503
        finally:
            shake._one_check_at_a_time.release()
        statuses = await asyncio.gather(*guesses)
        # each waiting guess looked at the lockout again when its turn came
        assert sorted(statuses) == [401] * (THROTTLE_FREE_FAILURES + 1) + [429] * (
            MAX_WAITING_CHECKS - THROTTLE_FREE_FAILURES - 1)
        assert shake.password_checks == THROTTLE_FREE_FAILURES + 1


async def test_an_unauthenticated_connection_never_replaces_an_authenticated_session(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    chargers = {"CP1": {"site": site_id, "password_hash": hash_password("right horse", **CHEAP)}}
    async with run_gateway(chargers=chargers) as gateway, \
            charger(gateway, "CP1", password="right horse") as first:
        live = gateway.registry.get("cp1")
        url = f"{gateway.url}/CP1"
        assert await status_of(url) == 401
        assert await status_of(url, additional_headers=basic_auth("CP1", "wrong")) == 401
        assert gateway.registry.get("cp1") is live and not first._connection.close_code
        assert (await first.call(call16.Heartbeat())).current_time
        # a reboot: the same charger with its credentials replaces the old socket
        async with charger(gateway, "CP1", password="right horse") as second:
            await asyncio.wait_for(first._connection.wait_closed(), 5)
            assert gateway.registry.get("cp1") is not live
            assert (await second.call(call16.Heartbeat())).current_time


# -- security profile 3: client certificates --------------------------------------------------------------

def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the client certificate test needs the openssl command to make throwaway certificates")
    subprocess.run([openssl, *args], check=True, capture_output=True)


_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _signed(folder: Path, name: str, common_name: str, ca: str, serial: int) -> tuple[str, str]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    _openssl("req", "-new", *_EC, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={common_name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", f"{folder / ca}.crt", "-CAkey", f"{folder / ca}.key",
             "-set_serial", str(serial), "-days", "1", "-out", str(cert))
    return str(cert), str(key)


def _self_signed(folder: Path, name: str, subject: str, *extensions: str) -> tuple[str, str]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    _openssl("req", "-x509", *_EC, "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", subject,
             *[arg for ext in extensions for arg in ("-addext", ext)])
    return str(cert), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """A server certificate, a charger CA, certificates it signed for CP_CERT, OPEN and an impostor, and
    a certificate for CP_CERT that no trusted CA signed."""
    folder = tmp_path_factory.mktemp("pki")
    made = {"server": _self_signed(folder, "server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            "ca": _self_signed(folder, "ca", "/CN=ampmq test charger CA", "basicConstraints=critical,CA:TRUE",
                               "keyUsage=critical,keyCertSign,cRLSign"),
            "rogue": _self_signed(folder, "rogue", "/CN=CP_CERT")}
    for serial, (name, common_name) in enumerate((("cp_cert", "CP_CERT"), ("open", "OPEN"),
                                                  ("impostor", "SOMEONE_ELSE")), start=1):
        made[name] = _signed(folder, name, common_name, "ca", serial)
    return made


def _tls(pki: dict[str, tuple[str, str]], client: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki["server"][0])
    if client is not None:
        context.load_cert_chain(*pki[client])
    return context


async def test_a_client_certificate_authenticates_a_charger(
    run_gateway: GatewayFactory, site_id: str, pki: dict[str, tuple[str, str]]
) -> None:
    chargers = {"CP_CERT": {"site": site_id, "auth": "certificate"},
                "CP_PW": {"site": site_id, "password_hash": hash_password("over tls", **CHEAP)},
                "OPEN": {"site": site_id, "auth": "none"}}
    async with run_gateway(chargers=chargers, tls_cert=pki["server"][0], tls_key=pki["server"][1],
                           tls_client_ca=pki["ca"][0]) as gateway:
        url = gateway.url
        ws = await connect(f"{url}/CP_CERT", ssl=_tls(pki, "cp_cert"), subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           open_timeout=5)
        async with reading(Client16("CP_CERT", ws), ws) as cp:
            assert (await cp.call(BOOT)).status == "Accepted"
            assert gateway.registry.get("cp-cert").admission.authenticated_by == "certificate"  # type: ignore[union-attr]
        assert await status_of(f"{url}/CP_CERT", ssl=_tls(pki, None)) == 401  # no certificate
        assert await status_of(f"{url}/CP_CERT", ssl=_tls(pki, "impostor")) == 401  # another charger's name
        assert await status_of(f"{url}/CP_CERT", ssl=_tls(pki, None),  # a password does not do instead
                               additional_headers=basic_auth("CP_CERT", "anything")) == 401
        # a certificate no trusted CA signed fails the TLS handshake (with TLS 1.3 the client learns of it
        # as a connection closed before the HTTP answer)
        refused_before = gateway.handshake.refused
        with pytest.raises((ssl.SSLError, OSError, InvalidMessage)):
            async with connect(f"{url}/CP_CERT", ssl=_tls(pki, "rogue"), open_timeout=5) as rogue:
                await rogue.recv()
        assert gateway.handshake.refused == refused_before  # it never reached the HTTP handshake
        # profile 2 beside it: a charger with a password and no certificate
        assert await status_of(f"{url}/CP_PW", ssl=_tls(pki, None),
                               additional_headers=basic_auth("CP_PW", "over tls")) == 101
        # auth: none, but this time with its certificate: the authenticated session cannot be taken over
        ws = await connect(f"{url}/OPEN", ssl=_tls(pki, "open"), subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           open_timeout=5)
        async with reading(Client16("OPEN", ws), ws) as cp:
            live = gateway.registry.get("open")
            assert await status_of(f"{url}/OPEN", ssl=_tls(pki, None)) == 401
            assert gateway.registry.get("open") is live
            assert (await cp.call(call16.Heartbeat())).current_time
