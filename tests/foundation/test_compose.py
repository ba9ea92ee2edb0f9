"""The compose file matches the services that exist, and its ACL really confines each service (tested on a
real Mosquitto with the generated ACL; no Docker engine needed)."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
from pathlib import Path

import yaml

from shared import acl
from shared.broker import Mosquitto, free_port, wait_for_port
from shared.config import AmpmqConfig
from shared.models import LoadKind, LoadState, Mode, Reason, Setpoint
from shared.probe import Probe
from shared.services import SERVICES
from shared.topics import Topics
from tests.project_broker import project_broker_conf

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_one_container_per_service_plus_the_broker() -> None:
    services = compose()["services"]
    assert set(services) == {"mosquitto", *SERVICES}
    for name in SERVICES:
        spec = services[name]
        assert spec["command"] == [name]
        user = re.match(r"mqtt://([^:]+):", spec["environment"]["AMPMQ_MQTT_URL"])
        assert user and user.group(1) == name, f"{name} must log in as its own user"


def test_every_service_user_has_a_password_and_an_acl_entry() -> None:
    init = (ROOT / "docker" / "mosquitto" / "init.sh").read_text()
    users_with_password = set(re.findall(r'"([a-z-]+):\$', init))
    assert users_with_password == {*SERVICES, acl.OPERATOR}
    assert set(acl.permissions()) == {*SERVICES, acl.OPERATOR}
    mosquitto = compose()["services"]["mosquitto"]
    assert any(v.startswith("./docker/mosquitto/acl:") for v in mosquitto["volumes"])
    conf = (ROOT / "docker" / "mosquitto" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "persistence true" in conf and "acl_file" in conf


def test_acl_file_is_current() -> None:
    assert (ROOT / "docker" / "mosquitto" / "acl").read_text() == acl.render(), "run `python -m shared.acl`"


async def test_acl_confines_services_on_a_real_broker(own_mosquitto: type[Mosquitto]) -> None:
    users = {name: f"pw-{name}" for name in [*SERVICES, acl.OPERATOR]}
    broker = own_mosquitto(users=users, acl=acl.render().splitlines()).start()
    t = Topics()
    state = LoadState(site="home", load="ev", kind=LoadKind.EVSE, min_current=6.0, max_current=16.0)
    setpoint = Setpoint(site="home", load="ev", mode=Mode.STANDARD, reason=Reason.OK, valid_until=state.ts)
    async with Probe(broker.url_for(acl.OPERATOR)) as operator, Probe(broker.url_for("allocator")) as allocator, \
            Probe(broker.url_for("load-adapters")) as adapters:
        await operator.subscribe(t.all())
        await allocator.publish(t.load_state("home", "ev"), state)  # not the allocator's topic: dropped
        await operator.publish(t.setpoint("home", "ev"), setpoint)  # operators only change settings: dropped
        await allocator.publish(t.setpoint("home", "ev"), setpoint)  # its own: delivered
        await adapters.publish(t.load_state("home", "ev"), state)  # the adapter's own: delivered
        await operator.expect(t.setpoint("home", "ev"))
        await operator.expect(t.load_state("home", "ev"))
        await asyncio.sleep(0.3)
        assert len(operator.on(t.setpoint("home", "ev"))) == 1
        assert len(operator.on(t.load_state("home", "ev"))) == 1


def test_the_compose_config_is_valid_for_every_service() -> None:
    from services.allocator.config import AllocatorConfig
    from services.load_adapters.service import LoadAdaptersConfig
    from services.meter_bridge.config import MeterBridgeConfig
    from services.ocpp_gateway.config import GatewayConfig
    from shared.config import load_config

    config = load_config(ROOT / "config" / "ampmq.yaml")
    sections = {"allocator": AllocatorConfig, "load_adapters": LoadAdaptersConfig,
                "meter_bridge": MeterBridgeConfig, "ocpp_gateway": GatewayConfig}
    for name, model in sections.items():
        assert config.section(name, model) is not None
    assert set(sections) | {"site_simulator"} == {n for n in AmpmqConfig.model_fields if n not in
                                                 ("mqtt_url", "root", "log_level")}


async def test_the_compose_broker_keeps_a_retained_message_through_kill_9(tmp_path: Path) -> None:
    """A setting published (and acknowledged) just before the power goes is there after the restart: the
    compose conf saves retained state on every change, not every 30 minutes (issue 16.3)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = project_broker_conf(tmp_path, port)
    url = f"mqtt://127.0.0.1:{port}"
    topic = Topics().load_settings("home", "ev")

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", port)
        return proc

    proc = start()
    try:
        async with Probe(url) as probe:
            await probe.publish(topic, '{"priority": 7}', retain=True)  # QoS 1: returns on the PUBACK
        # Mosquitto acknowledges first and saves right after, within milliseconds: give it that long
        # (with the default autosave_interval it would save 30 minutes later)
        for _ in range(50):
            if (tmp_path / "mosquitto.db").exists():
                break
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # a power loss: no clean shutdown, no save on the way out
        proc.wait(5)
        proc = start()
        async with Probe(url) as probe:
            await probe.subscribe(topic)
            message = await probe.expect(topic, timeout=5)
            assert message.json() == {"priority": 7}
    finally:
        proc.kill()
        proc.wait(5)
