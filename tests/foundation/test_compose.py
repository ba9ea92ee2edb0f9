"""The compose file: one container per service plus the broker and its ACL writer, health-gated start-up,
the broker on localhost unless the user opts in, credentials outside URLs, every variable in .env.example.
``docker compose config`` validates it where a Docker CLI with compose exists, and a smoke test starts it
where a Docker engine answers (each says plainly when it is skipped). The broker itself is tested without
Docker in test_deploy.py."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import acl
from shared.broker import free_port, wait_for_port
from shared.config import AmpmqConfig
from shared.probe import Probe
from shared.services import SERVICES
from shared.topics import Topics
from tests.project_broker import project_broker_conf

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def example_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_one_container_per_service_plus_the_broker_and_its_acl() -> None:
    services = compose()["services"]
    assert set(services) == {"mosquitto", "broker-acl", *SERVICES}
    for name in SERVICES:
        spec = services[name]
        assert spec["command"] == [name]
        env = spec["environment"]
        assert env["AMPMQ_MQTT_USERNAME"] == name, f"{name} must log in as its own user"
        assert "@" not in env["AMPMQ_MQTT_URL"], "credentials go beside the URL, where any character works"
    assert services["broker-acl"]["command"][0] == "acl"


def test_every_container_has_a_health_check_and_starts_after_a_healthy_broker() -> None:
    services = compose()["services"]
    for name in [*SERVICES, "mosquitto"]:
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    for name in SERVICES:
        assert services[name]["healthcheck"]["test"] == ["CMD", "ampmq", "health", name]
        assert services[name]["depends_on"] == {"mosquitto": {"condition": "service_healthy"}}
    assert services["mosquitto"]["depends_on"] == {"broker-acl": {"condition": "service_completed_successfully"}}


def test_the_broker_listens_on_localhost_unless_the_user_opts_in() -> None:
    ports = compose()["services"]["mosquitto"]["ports"]
    assert ports and all(p.startswith("${MQTT_BIND:-127.0.0.1}:") for p in ports)
    assert example_env()["MQTT_BIND"] == "127.0.0.1"
    assert example_env()["MQTT_PORT"] != "1883", "1883 is often Home Assistant's Mosquitto"


def test_every_user_has_a_password_variable_and_no_placeholder_is_accepted() -> None:
    init = (ROOT / "docker" / "mosquitto" / "init.sh").read_text()
    users = dict(pair.split(":") for pair in re.findall(r"([a-z-]+:[A-Z_]+_PASSWORD)", init))
    assert set(users) == set(acl.USERS) - {acl.HEALTHCHECK}
    env = compose()["services"]["mosquitto"]["environment"]
    for variable in users.values():
        assert variable in env and ":?" in env[variable], f"{variable}: compose must insist on it"
        assert example_env()[variable].startswith("change-me")  # and init.sh refuses it (test_deploy.py)


def test_every_service_serves_metrics_on_its_own_localhost_port() -> None:
    services = compose()["services"]
    published = []
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["AMPMQ_METRICS__PORT"] == "9100" and env["AMPMQ_METRICS__HOST"] == "0.0.0.0", name
        ports = [p for p in services[name]["ports"] if p.endswith(":9100")]
        assert len(ports) == 1 and ports[0].startswith("${METRICS_BIND:-127.0.0.1}:"), name
        published.append(example_env()[re.findall(r"\$\{([A-Z_]+_METRICS_PORT)", ports[0])[0]])
    assert len(set(published)) == len(SERVICES), "one host port per container"
    assert example_env()["METRICS_BIND"] == "127.0.0.1"


def test_every_variable_the_compose_file_uses_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    assert used <= set(example_env()), used - set(example_env())


def test_the_image_installs_dependencies_before_the_code_and_no_demo_extras() -> None:
    steps = (ROOT / "Dockerfile").read_text()
    assert steps.index("COPY pyproject.toml") < steps.index("pip install --no-cache-dir -r") < steps.index(
        "COPY shared")
    assert "[demo]" not in steps and "[test]" not in steps
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert "amqtt" not in runtime and "rich" not in runtime
    assert {d.split(">")[0] for d in project["optional-dependencies"]["demo"]} == {"amqtt", "rich"}
    assert "'.[test,demo]'" in (ROOT / "Makefile").read_text()


def test_the_shipped_config_is_valid_for_every_service_and_gets_an_acl() -> None:
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
    assert set(sections) | {"site_simulator"} == {n for n in AmpmqConfig.model_fields if not n.startswith("mqtt_")
                                                 and n not in ("root", "log_level", "metrics")}
    text = acl.render(config)
    assert "user meters\ntopic write shellypro3em-c8f09e8a1b2c/" in text  # the configured Shelly Pro 3EM


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if done.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def _compose_env() -> dict[str, str]:
    env = {**os.environ, **example_env()}
    return {**env, **{k: f"test-{k.lower()}" for k in example_env() if k.endswith("_PASSWORD")}}


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker CLI with compose on this machine: `docker compose config` not run")
    done = subprocess.run([*cli, "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT, env=_compose_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    without = {k: v for k, v in _compose_env().items() if not k.endswith("_PASSWORD")}
    refused = subprocess.run([*cli, "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT, env=without,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "copy .env.example to .env" in refused.stderr


def _engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return done.returncode == 0


@pytest.mark.timeout(900)
def test_compose_smoke_every_container_becomes_healthy() -> None:
    cli = _compose_cli()
    if cli is None or not _engine_answers():
        pytest.skip("no Docker engine answers here: the compose smoke test (docker compose up) was not run")
    project = ["-p", "ampmq-smoke", "-f", str(COMPOSE)]
    env = {**_compose_env(), "MQTT_PORT": "0", "MQTTS_PORT": "0", "OCPP_PORT": "0"}
    try:
        subprocess.run([*cli, *project, "up", "-d", "--build", "--wait", "--wait-timeout", "300"], cwd=ROOT,
                       env=env, check=True, timeout=900)
        deadline = time.monotonic() + 120
        while True:
            done = subprocess.run([*cli, *project, "ps", "--format", "{{.Service}} {{.Health}}"], cwd=ROOT,
                                  env=env, capture_output=True, text=True, timeout=60)
            health = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
            if all(health.get(name) == "healthy" for name in [*SERVICES, "mosquitto"]):
                break
            assert time.monotonic() < deadline, health
            time.sleep(3)
    finally:
        subprocess.run([*cli, *project, "down", "-v"], cwd=ROOT, env=env, capture_output=True, timeout=300)


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


WITHOUT_DEMO_EXTRAS = """
import sys
class NoDemoExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("amqtt", "rich"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoDemoExtras())
from shared.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_runtime_works_without_the_demo_extras(tmp_path: Path) -> None:
    """As in the image (no amqtt, no rich): every service command and the ACL work; `ampmq run` without a
    broker and `ampmq demo` say what to install, in one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMQ_")}

    def ampmq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", WITHOUT_DEMO_EXTRAS, *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    acl_done = ampmq("acl", "--config", "config/ampmq.yaml")
    assert acl_done.returncode == 0 and "user meters" in acl_done.stdout, acl_done.stderr
    run = ampmq("run", "--for", "5")
    assert run.returncode == 2 and "embedded broker is not installed" in run.stderr and "Traceback" not in run.stderr
    demo = ampmq("demo", "--no-dashboard", "--duration", "1")
    assert demo.returncode == 2 and "pip install 'ampmq[demo]'" in demo.stderr, demo.stderr[-1000:]
