"""TLS configured, not inherited: the CA, the client certificate and its key come from the config
(``mqtt_tls``), never from ``SSL_CERT_FILE``. Certificates are made here; the broker is the compose broker's
own init.sh + mosquitto.conf with its TLS listener, on the local Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared import acl
from shared.broker import wait_for_port
from shared.config import AmpmqConfig, ConfigError, load_config
from shared.probe import Probe
from shared.services import run_services
from shared.topics import Topics

from .test_deploy import DeployedBroker, env_passwords

T = Topics()


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    (folder / f"{stem}.key").write_bytes(pem)


def make_certificates(folder: Path) -> None:
    """A CA; a server certificate for 127.0.0.1/localhost and a client certificate, both signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("ampmq test CA")).issuer_name(_name("ampmq test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    _write(folder, "ca", ca, ca_key)
    for stem, usage, names in (("server", ExtendedKeyUsageOID.SERVER_AUTH,
                                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("allocator")])):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(stem)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(folder, stem, cert, key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs")
    folder.chmod(0o755)
    make_certificates(folder)
    return folder


def tls_broker(certs: Path, require_client_cert: bool) -> DeployedBroker:
    env = {**env_passwords(), "MQTT_TLS_REQUIRE_CLIENT_CERT": "true" if require_client_cert else "false"}
    return DeployedBroker(acl.render(AmpmqConfig()), env, certs=certs)


def running_tls_broker(certs: Path, require_client_cert: bool) -> Iterator[DeployedBroker]:
    broker = tls_broker(certs, require_client_cert)
    try:
        broker.start()
        wait_for_port("127.0.0.1", broker.tls_port, timeout=5)
        yield broker
    finally:
        broker.cleanup()


@pytest.fixture(scope="module")
def server_only(certs: Path) -> Iterator[DeployedBroker]:
    yield from running_tls_broker(certs, require_client_cert=False)


@pytest.fixture(scope="module")
def mutual(certs: Path) -> Iterator[DeployedBroker]:
    yield from running_tls_broker(certs, require_client_cert=True)


def tls_config(broker: DeployedBroker, user: str, **tls: Path) -> AmpmqConfig:
    return load_config(mqtt_url=f"mqtts://127.0.0.1:{broker.tls_port}", mqtt_username=user,
                       mqtt_password=env_passwords()[{"allocator": "ALLOCATOR_PASSWORD",
                                                      acl.OPERATOR: "OPERATOR_PASSWORD"}[user]],
                       mqtt_tls={k: str(v) for k, v in tls.items()})


async def test_a_service_connects_with_the_configured_ca(server_only: DeployedBroker, certs: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    operator = tls_config(server_only, acl.OPERATOR, ca_file=certs / "ca.crt")
    allocator = tls_config(server_only, "allocator", ca_file=certs / "ca.crt")
    async with Probe(operator.broker()) as probe:
        await probe.subscribe(T.service_availability("allocator"))
        task = asyncio.get_running_loop().create_task(run_services(allocator, ["allocator"]))
        try:
            await probe.expect(T.service_availability("allocator"), where=lambda m: m.text == "online", timeout=10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_without_the_ca_the_connection_fails_saying_the_certificate_is_not_trusted(
    server_only: DeployedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    config = tls_config(server_only, acl.OPERATOR)
    with pytest.raises(aiomqtt.MqttError, match="certificate verify failed"):
        async with Probe(config.broker()):
            pass


async def test_a_broker_that_requires_client_certificates(mutual: DeployedBroker, certs: Path) -> None:
    with_cert = tls_config(mutual, acl.OPERATOR, ca_file=certs / "ca.crt", cert_file=certs / "client.crt",
                           key_file=certs / "client.key")
    allocator = tls_config(mutual, "allocator", ca_file=certs / "ca.crt", cert_file=certs / "client.crt",
                           key_file=certs / "client.key")
    async with Probe(with_cert.broker()) as probe:
        await probe.subscribe(T.service_availability("allocator"))
        task = asyncio.get_running_loop().create_task(run_services(allocator, ["allocator"]))
        try:
            await probe.expect(T.service_availability("allocator"), where=lambda m: m.text == "online", timeout=10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    without = tls_config(mutual, acl.OPERATOR, ca_file=certs / "ca.crt")
    with pytest.raises(aiomqtt.MqttError):  # the broker closes the connection: no CONNACK comes
        async with without.broker().client("no-client-certificate", timeout=2) as client:
            await client.subscribe(T.all())


def test_tls_files_that_cannot_be_used_are_config_errors(certs: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt_tls.*ca_file .*nope.crt.* is not a readable file"):
        load_config(mqtt_tls={"ca_file": str(tmp_path / "nope.crt")})
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        load_config(mqtt_tls={"cert_file": str(certs / "client.crt")})
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a usable CA certificate"):
        load_config(mqtt_tls={"ca_file": str(junk)})
    with pytest.raises(ConfigError, match="not a usable certificate and key"):
        load_config(mqtt_tls={"cert_file": str(certs / "client.crt"), "key_file": str(certs / "server.key")})
