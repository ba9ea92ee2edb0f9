"""The compose deployment, tested without trusting it: the real ``docker/mosquitto/init.sh`` and
``mosquitto.conf`` with the ACL generated from a config, on the local Mosquitto dropped to an unprivileged
user as in the container; every service logs in as its own user, the devices as theirs, and a short site
runs through it (a Shelly status -> measurement -> setpoint -> a charger command). Each user is also refused
what it must not do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from services.ocpp_gateway.service import gateway_for
from shared import acl
from shared.broker import free_port, wait_for_port
from shared.config import AmpmqConfig, load_config
from shared.mqtt import BrokerAddress, serving
from shared.probe import Probe
from shared.services import run_services
from shared.topics import Topics
from tests.load_adapters.chargers import charge_point

ROOT = Path(__file__).resolve().parents[2]
BROKER_DIR = ROOT / "docker" / "mosquitto"
T = Topics()
#: Any character works in a password passed as mqtt_password: these would break a URL.
PASSWORDS = {user: f"{user}-p@ss/w#rd:%20 x" for user in acl.USERS if user != acl.HEALTHCHECK}
ENV_NAMES = {"allocator": "ALLOCATOR_PASSWORD", "ocpp-gateway": "OCPP_GATEWAY_PASSWORD",
             "meter-bridge": "METER_BRIDGE_PASSWORD", "load-adapters": "LOAD_ADAPTERS_PASSWORD",
             acl.OPERATOR: "OPERATOR_PASSWORD", acl.METERS: "METERS_PASSWORD", acl.DEVICES: "DEVICES_PASSWORD"}
METER = "shellypro3em-deploy"

SITE_CONFIG: dict[str, Any] = {
    "meter_bridge": {"sites": {"home": {"stale_after": 10, "sources": [
        {"id": "grid", "driver": "shelly", "prefix": METER, "role": "grid"}]}}},
    "ocpp_gateway": {"host": "127.0.0.1", "port": 0, "default_site": "home",
                     "chargers": {"CP_001": {"site": "home", "auth": "none"}}},  # the broker is under test here
    "load_adapters": {"loads": [
        {"type": "ocpp_charger", "site": "home", "id": "garage-ev", "charger": "cp-001", "connector": 1,
         "phases": ["L1", "L2", "L3"], "min_current": 6, "max_current": 16, "lifetime": 5, "renew_every": 2},
        {"type": "mqtt_switch", "site": "home", "id": "heater", "command_topic": "heater/set",
         "state_topic": "heater/state", "rated_power": 1000},
        {"type": "boiler", "site": "home", "id": "tank", "control": "continuous", "max_power": 3000.0,
         "min_power": 500.0, "temperature": {"topic": "boiler/temp"}, "power_command": {"topic": "boiler/power/set"}},
        {"type": "heat_pump", "site": "home", "id": "hp", "control": "thermostat", "rated_power": 2500.0,
         "thermostat": {"target": {"topic": "hp/target/set"}}},
    ]},
    "allocator": {"settle": 0.2, "sites": {"home": {"fuse_limit": 25, "margin": 1}}},
}


def _unprivileged_user() -> str | None:
    """The user Mosquitto drops to when started as root: its own ``mosquitto`` user, as in the image."""
    if os.geteuid() != 0:
        return None
    for name in ("mosquitto", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    return None


class DeployedBroker:
    """``init.sh`` + ``mosquitto.conf`` of the compose setup, their ``/mosquitto`` paths moved to a folder."""

    def __init__(self, acl_text: str, env: dict[str, str], certs: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ampmq-deploy-"))
        self.dir.chmod(0o755)  # the broker's user must reach its files, as in the container
        self.port = free_port("127.0.0.1")
        self.tls_port = free_port("127.0.0.1")
        self.run_as = _unprivileged_user()
        conf = (BROKER_DIR / "mosquitto.conf").read_text()
        conf = conf.replace("/mosquitto/", f"{self.dir}/").replace("listener 1883", f"listener {self.port} 127.0.0.1")
        if self.run_as and self.run_as != "mosquitto":
            conf += f"user {self.run_as}\n"
        (self.dir / "config").mkdir()
        (self.dir / "config" / "mosquitto.conf").write_text(conf)
        (self.dir / "acl").mkdir(mode=0o755)
        (self.dir / "acl" / "acl").write_text(acl_text)
        (self.dir / "acl" / "acl").chmod(0o644)
        self.certs = certs or self.dir / "certs"
        self.certs.mkdir(exist_ok=True)
        self.env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin",
                    "MOSQUITTO_CONF": str(self.dir / "config" / "mosquitto.conf"),
                    "MOSQUITTO_DATA": str(self.dir / "data"), "MOSQUITTO_CERTS": str(self.certs),
                    "MOSQUITTO_USER": self.run_as or "", "MOSQUITTO_TLS_LISTENER": f"{self.tls_port} 127.0.0.1",
                    **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def init(self) -> subprocess.Popen[bytes]:
        """Run init.sh (it ends by exec'ing Mosquitto)."""
        self.proc = subprocess.Popen(["sh", str(BROKER_DIR / "init.sh")], env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        return self.proc

    def start(self) -> DeployedBroker:
        self.init()
        try:
            wait_for_port("127.0.0.1", self.port, timeout=10)
        except Exception:
            self.stop()
            raise AssertionError(f"the broker did not start: {self.output()}") from None
        return self

    def output(self) -> str:
        if self.proc is None or self.proc.stdout is None:
            return ""
        if self.proc.poll() is None:
            self.stop()
        return self.proc.stdout.read().decode("utf-8", "replace") if self.proc.stdout else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def address(self, user: str, *, tls: bool = False, **tls_files: Path) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.tls_port if tls else self.port, user, PASSWORDS[user], tls=tls,
                             **tls_files)

    def config(self, user: str, base: AmpmqConfig) -> AmpmqConfig:
        """``base`` logged in as ``user`` with the credentials beside the URL (any character works)."""
        return base.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{self.port}", "mqtt_username": user,
                                       "mqtt_password": PASSWORDS[user]})

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def env_passwords() -> dict[str, str]:
    return {ENV_NAMES[user]: password for user, password in PASSWORDS.items()}


@pytest.fixture(scope="module")
def site_config(tmp_path_factory: pytest.TempPathFactory) -> AmpmqConfig:
    path = tmp_path_factory.mktemp("deploy") / "ampmq.yaml"
    path.write_text(yaml.safe_dump(SITE_CONFIG))
    return load_config(path)


@pytest.fixture(scope="module")
def broker(site_config: AmpmqConfig) -> Iterator[DeployedBroker]:
    deployed = DeployedBroker(acl.render(site_config), env_passwords())
    try:
        yield deployed.start()
    finally:
        deployed.cleanup()


# -- the broker starts, and refuses placeholders -------------------------------------------------------
def test_init_refuses_placeholder_passwords_with_a_sentence() -> None:
    deployed = DeployedBroker("", {**env_passwords(), "METERS_PASSWORD": "change-me"})
    try:
        out, _ = deployed.init().communicate(timeout=20)
        assert deployed.proc is not None and deployed.proc.returncode == 1
        text = out.decode()
        assert "METERS_PASSWORD" in text and "copy .env.example to .env" in text.lower()
        assert not (deployed.dir / "data" / "passwd").exists()
    finally:
        deployed.cleanup()


def test_the_broker_starts_as_an_unprivileged_user_with_every_password(broker: DeployedBroker) -> None:
    """15.1: the password file is readable by the user Mosquitto drops to (on main: "Unable to open pwfile")."""
    assert broker.proc is not None and broker.proc.poll() is None
    passwd = broker.dir / "data" / "passwd"
    users = {line.split(":", 1)[0] for line in passwd.read_text().splitlines()}
    assert users == set(acl.USERS)
    assert passwd.stat().st_mode & 0o077 == 0, "the password file is private to the broker's user"
    if broker.run_as:
        assert passwd.stat().st_uid == pwd.getpwnam(broker.run_as).pw_uid


def test_the_health_check_user_logs_in_with_its_generated_password(broker: DeployedBroker) -> None:
    password = (broker.dir / "data" / "healthcheck").read_text()
    tool = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    if not Path(tool).exists():
        pytest.skip("mosquitto_sub (mosquitto-clients) is not installed")
    done = subprocess.run([tool, "-h", "127.0.0.1", "-p", str(broker.port), "-u", "healthcheck", "-P", password,
                           "-t", acl.HEALTH_TOPIC, "-C", "1", "-W", "5"], capture_output=True, text=True, timeout=15)
    assert done.returncode == 0, done.stderr


# -- a site runs through it, each user on its own topics ----------------------------------------------
@contextlib.asynccontextmanager
async def services(broker: DeployedBroker, config: AmpmqConfig) -> AsyncIterator[Any]:
    """Every service with its own user; the gateway in-process on a free port (its URL for the charger)."""
    gateway = gateway_for(broker.config("ocpp-gateway", config))
    tasks = [asyncio.get_running_loop().create_task(run_services(broker.config(name, config), [name]))
             for name in ("meter-bridge", "load-adapters", "allocator")]
    try:
        async with serving(gateway.runtime), gateway.running():
            yield gateway
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)


def shelly_status(amps: float) -> str:
    import json

    return json.dumps({"id": 0, "a_current": amps, "a_voltage": 230.0, "a_act_power": amps * 230.0,
                       "b_current": amps, "b_voltage": 230.0, "b_act_power": amps * 230.0,
                       "c_current": amps, "c_voltage": 230.0, "c_act_power": amps * 230.0,
                       "total_act_power": 3 * amps * 230.0})


async def refused(sender: Probe, topic: str, operator: Probe) -> bool:
    """Publish on ``topic`` (QoS 1: acknowledged once the broker has handled it), then a round trip of the
    operator's own: a delivered message would have reached the operator (who reads the whole tree) first."""
    mark = operator.mark()
    await sender.publish(topic, "forged")
    flush = f"flush-{mark}"
    await operator.publish("homeassistant/status", flush)
    await operator.expect("homeassistant/status", after=mark, where=lambda m: m.text == flush)
    return not [m for m in operator.messages[mark:] if m.topic == topic and m.text == "forged"]


async def read_beyond_grant(probe: Probe, user: str, grants: dict[str, acl.Grant]) -> list[str]:
    """Subscribe ``user`` to ``#``: the broker hands it only what its ACL lets it read. The retained state of
    the whole site (setpoints, measurements, charger topics) would come at once; a message of its own after
    the subscription arrives after them."""
    mark = probe.mark()
    await probe.subscribe("#")
    own = f"{T.root}/services/{user}/probe"
    await probe.publish(own, "flush")
    await probe.expect(own, after=mark)
    allowed = grants[user].read
    return sorted({m.topic for m in probe.messages[mark:]
                   if not any(aiomqtt.Topic(m.topic).matches(f) for f in allowed)})


async def test_a_site_runs_behind_the_generated_acl_and_each_user_is_confined(
    broker: DeployedBroker, site_config: AmpmqConfig
) -> None:
    """15.2 and 16: meters, devices, services and the operator do all they need, and nothing more."""
    async with (Probe(broker.address(acl.OPERATOR)) as operator, Probe(broker.address(acl.METERS)) as meter,
                Probe(broker.address(acl.DEVICES)) as devices):
        await operator.subscribe(T.all())
        await operator.subscribe("homeassistant/#")
        for topic in ("heater/set", "boiler/power/set", "hp/target/set"):
            await devices.subscribe(topic)
        async with services(broker, site_config) as gateway:
            await operator.expect(T.service_availability("load-adapters"), where=lambda m: m.text == "online")
            async with charge_point(gateway.url, "CP_001") as charger:
                await charger.boot()
                await charger.status("Charging")
                # the meter (its own user) -> the measurement (meter-bridge)
                for _ in range(100):
                    await meter.publish(f"{METER}/status/em:0", shelly_status(5.0))
                    if operator.on(T.measurement("home")):
                        break
                    await asyncio.sleep(0.1)
                await operator.expect(T.measurement("home"))
                # -> a setpoint (allocator) -> a charging profile on the charger (load-adapters, gateway)
                await operator.expect(T.setpoint("home", "garage-ev"), timeout=15)
                await charger.wait_call("SetChargingProfile", timeout=15)
            # devices get their commands (the adapters' safe state) and their reports reach the adapters
            await devices.expect("heater/set", timeout=10)
            await devices.expect("boiler/power/set", timeout=10)
            await devices.expect("hp/target/set", timeout=10)
            mark = operator.mark()
            heater = T.load_availability("home", "heater")
            assert not [m for m in operator.messages[:mark] if m.topic == heater and m.text == "online"]
            await devices.publish("heater/state", "ON")
            await operator.expect(heater, after=mark, timeout=10,
                                  where=lambda m: m.text == "online")  # the adapter heard its device
            await operator.expect(T.load_state("home", "heater"), after=mark, timeout=10,
                                  where=lambda m: m.json()["status"] != "unavailable")
            # Home Assistant's birth message (the operator) reaches the allocator, which announces again
            mark = operator.mark()
            await operator.publish("homeassistant/status", "online")
            await operator.expect("homeassistant/status", after=mark)
            await operator.expect("homeassistant/+/+/+/config", after=mark, timeout=10)
            # the operator changes a configured site's settings
            await operator.publish(T.site_settings_set_field("home", "mode"), "solar_priority")
            await operator.expect(T.site_settings("home"), timeout=10,
                                  where=lambda m: m.json()["mode"] == "solar_priority")

        async with (Probe(broker.address("load-adapters")) as adapters, Probe(broker.address("ocpp-gateway")) as gw,
                    Probe(broker.address("meter-bridge")) as bridge, Probe(broker.address("allocator")) as allocator):
            # the adapters: no Reset to another site's charger, nor to a charger that is not theirs, no action
            # they do not use, no forged charger meter; the gateway issues no command at all
            assert await refused(adapters, T.charger_command("other", "cp-9", "Reset"), operator)
            assert await refused(adapters, T.charger_command("home", "cp-002", "Reset"), operator)
            assert await refused(adapters, T.charger_command("home", "cp-001", "RemoteStartTransaction"), operator)
            assert await refused(adapters, T.connector_meter("home", "cp-001", 1), operator)
            assert await refused(gw, T.charger_command("home", "cp-001", "Reset"), operator)
            # neither the meter bridge nor the meters publish another site's measurement
            assert await refused(bridge, T.measurement("other"), operator)
            assert await refused(meter, T.measurement("other"), operator)
            assert await refused(meter, T.measurement("home"), operator)
            # the devices forge no load state; the operator no setpoint and no other site's settings;
            # the allocator no load state
            assert await refused(devices, T.load_state("home", "heater"), operator)
            assert await refused(operator, T.setpoint("home", "garage-ev"), operator)
            assert await refused(operator, T.site_settings_set("other"), operator)
            assert await refused(allocator, T.load_state("home", "garage-ev"), operator)
            # what each may do still goes through (the check above can fail)
            assert not await refused(adapters, T.charger_command("home", "cp-001", "Reset"), operator)
            assert not await refused(bridge, T.measurement("home"), operator)
            # services read only what they use: `#` brings a service its own topics, nothing else
            grants = acl.permissions(site_config)
            assert len(operator.on(T.all())) > 20  # there is a whole site's retained state to leak
            for probe, user in ((bridge, "meter-bridge"), (adapters, "load-adapters"), (gw, "ocpp-gateway"),
                                (allocator, "allocator")):
                assert await read_beyond_grant(probe, user, grants) == [], user


def test_the_gateway_user_may_issue_no_command_and_the_adapters_only_theirs(site_config: AmpmqConfig) -> None:
    grants = acl.permissions(site_config)
    assert not [t for t in grants["ocpp-gateway"].write if "/cmd" in t]
    commands = sorted(t for t in grants["load-adapters"].write if "/cmd/" in t)
    assert commands == sorted(T.charger_command("home", "cp-001", a) for a in
                              ("ClearChargingProfile", "GetConfiguration", "GetVariables", "Reset",
                               "SetChargingProfile"))
    assert "#" not in {t for g in grants.values() for t in g.read}


def test_the_adapters_acl_covers_every_action_they_send() -> None:
    """The ACL grants the adapters COMMANDS and nothing else: every action the adapter sends must be there."""
    import inspect
    import re

    from services.load_adapters import ocpp_charger
    from services.load_adapters.ocpp_profiles import rate_unit_request
    from shared.models import OcppVersion

    sent = set(re.findall(r'_send\(\s*"(\w+)"', inspect.getsource(ocpp_charger)))
    sent |= {rate_unit_request(version)[0] for version in OcppVersion}
    assert sent and sent <= set(ocpp_charger.COMMANDS), sent - set(ocpp_charger.COMMANDS)


async def test_the_container_health_check_logs_in_as_the_service(
    broker: DeployedBroker, site_config: AmpmqConfig
) -> None:
    """``ampmq health <service>`` (the compose health check) with the service's own credentials: 0 while the
    service says online, 1 with a sentence when it does not."""
    import sys

    config = broker.config("meter-bridge", site_config)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AMPMQ_")},
           "AMPMQ_MQTT_URL": config.mqtt_url, "AMPMQ_MQTT_USERNAME": "meter-bridge",
           "AMPMQ_MQTT_PASSWORD": PASSWORDS["meter-bridge"]}

    async def health() -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "shared.cli", "health", "meter-bridge"],
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    task = asyncio.get_running_loop().create_task(run_services(config, ["meter-bridge"]))
    try:
        async with Probe(broker.address("meter-bridge")) as probe:
            await probe.subscribe(T.service_availability("meter-bridge"))
            await probe.expect(T.service_availability("meter-bridge"), where=lambda m: m.text == "online")
        done = await health()
        assert done.returncode == 0 and "meter-bridge: online" in done.stdout, done.stderr
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    done = await health()
    assert done.returncode == 1 and "meter-bridge: offline" in done.stderr
