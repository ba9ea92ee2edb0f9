"""A real broker under every test: ``MQTT_URL`` if set, else a ``mosquitto`` from PATH on a free port,
else testcontainers' Mosquitto when a Docker engine answers, else the run fails with the reason."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.broker import BrokerStartError, Mosquitto
from shared.probe import Probe


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """The broker every test in the session talks to (a real one, never a mock)."""
    if url := os.environ.get("MQTT_URL"):
        yield url
        return
    if shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto"):
        with Mosquitto() as broker:
            yield broker.url
        return
    if _docker_answers():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container = DockerContainer("eclipse-mosquitto:2").with_exposed_ports(1883)
        container.with_command("mosquitto -c /mosquitto-no-auth.conf")
        with container:
            wait_for_logs(container, "running")
            yield f"mqtt://{container.get_container_host_ip()}:{container.get_exposed_port(1883)}"
        return
    raise BrokerStartError(
        "no broker for the tests: set MQTT_URL, install mosquitto (make test does), or start a Docker engine"
    )


@pytest.fixture
def own_mosquitto() -> Iterator[type[Mosquitto]]:
    """Start brokers of the test's own (users, ACLs, restarts); they are stopped after the test."""
    started: list[Mosquitto] = []

    class _Tracked(Mosquitto):
        def start(self) -> Mosquitto:
            started.append(self)
            return super().start()

    yield _Tracked
    for broker in started:
        broker.__exit__(None, None, None)


@pytest.fixture
async def probe(mqtt_url: str) -> AsyncIterator[Probe]:
    """A connected MQTT client that records what it receives."""
    async with Probe(mqtt_url) as p:
        yield p


@pytest.fixture
def site_id(request: pytest.FixtureRequest) -> str:
    """A site id unique to the test, so tests sharing the session broker never see each other's data."""
    import hashlib

    return "t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
