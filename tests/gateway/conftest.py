# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""Gateway tests: the gateway in-process on a free port, the real Mosquitto, real OCPP clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from services.ocpp_gateway.config import GatewayConfig
from services.ocpp_gateway.gateway import Gateway
from shared.clock import SYSTEM_CLOCK, Clock
from shared.mqtt import Runtime, serving
from shared.topics import Topics
from tests.charge_point_loop import reading


class SteppedClock:
    """A clock the test moves by hand (the gateway takes all its time from its clock)."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, UTC)

    def monotonic(self) -> float:
        return self.seconds

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture(autouse=True)
def no_ampmq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config these tests build is the whole config: no AMPMQ_* variable (nor a config file another
    test pointed AMPMQ_CONFIG at) may leak into it."""
    for key in [k for k in os.environ if k.startswith("AMPMQ_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def topics() -> Topics:
    return Topics()


@pytest.fixture
def run_gateway(mqtt_url: str) -> GatewayFactory:
    """``async with run_gateway(chargers={...}, ...) as gateway``: a gateway on a free port, connected to MQTT.

    Most tests here are about something other than authentication: a charger they list with neither a
    ``password_hash`` nor an ``auth`` gets ``auth: none`` (the tests of authentication say what they mean)."""

    @contextlib.asynccontextmanager
    async def factory(clock: Clock = SYSTEM_CLOCK, **settings: Any) -> AsyncIterator[Gateway]:
        settings.setdefault("host", "127.0.0.1")
        settings.setdefault("port", 0)
        settings["chargers"] = {cp_id: entry if {"auth", "password_hash"} & set(entry) else {**entry, "auth": "none"}
                                for cp_id, entry in settings.get("chargers", {}).items()}
        config = GatewayConfig.model_validate(settings)
        runtime = Runtime("ocpp-gateway", mqtt_url, Topics())
        gateway = Gateway(config, runtime, clock)
        async with serving(runtime), gateway.running():
            yield gateway

    return factory


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Client16(ChargePoint16):
    """A 1.6 charge point (the ocpp library's client side) that accepts what it is told and records it."""

    def __init__(self, cp_id: str, connection: ClientConnection) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.answer_status = "Accepted"

    @on(Action16.set_charging_profile)
    def on_set_charging_profile(self, **kw: Any) -> result16.SetChargingProfile:
        self.received.append(("SetChargingProfile", kw))
        return result16.SetChargingProfile(status=self.answer_status)

    @on(Action16.get_configuration)
    def on_get_configuration(self, **kw: Any) -> result16.GetConfiguration:
        self.received.append(("GetConfiguration", kw))
        return result16.GetConfiguration(configuration_key=[{"key": "HeartbeatInterval", "readonly": False,
                                                             "value": "300"}])


class Client201(ChargePoint201):
    """A 2.0.1 charging station (the ocpp library's client side)."""

    def __init__(self, cp_id: str, connection: ClientConnection) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.received: list[tuple[str, dict[str, Any]]] = []

    @on(Action201.set_charging_profile)
    def on_set_charging_profile(self, **kw: Any) -> result201.SetChargingProfile:
        self.received.append(("SetChargingProfile", kw))
        return result201.SetChargingProfile(status="Accepted")


@contextlib.asynccontextmanager
async def charger(gateway: Gateway, cp_id: str, version: str = "1.6", *, password: str | None = None,
                  subprotocols: list[str] | None = None) -> AsyncIterator[Any]:
    """A connected client charge point with its reading loop running."""
    offered = subprotocols if subprotocols is not None else [f"ocpp{version}"]
    headers = basic_auth(cp_id, password) if password is not None else None
    ws = await connect(f"{gateway.url}/ocpp/{cp_id}", subprotocols=offered or None,  # type: ignore[arg-type]
                       additional_headers=headers, open_timeout=5)
    client: Any = Client16(cp_id, ws) if version == "1.6" else Client201(cp_id, ws)
    async with reading(client, ws):
        yield client


def raw_charger(gateway: Gateway, cp_id: str, subprotocol: str = "ocpp1.6") -> connect:
    """A bare websocket to the gateway, for frames no OCPP library would send."""
    return connect(f"{gateway.url}/{cp_id}", subprotocols=[Subprotocol(subprotocol)], open_timeout=5)
