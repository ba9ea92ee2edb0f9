"""Small real MQTT devices for the tests: they speak the device protocols (Shelly Gen2 RPC, Tasmota,
a plain switch) over a real broker connection, as the hardware does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from types import TracebackType
from typing import Any

import aiomqtt

from shared.mqtt import BrokerAddress


class Device:
    """An MQTT client with a reader that hands every message to :meth:`handle`."""

    def __init__(self, url: str) -> None:
        self.client = BrokerAddress.parse(url).client(f"test-device-{uuid.uuid4().hex[:8]}")
        self.received: list[tuple[str, str]] = []
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Any:
        await self.client.__aenter__()
        await self.subscribe()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.started()
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(aiomqtt.MqttError):
            await self.client.__aexit__(t, e, tb)

    async def _read(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            text = payload.decode()
            self.received.append((str(message.topic), text))
            await self.handle(str(message.topic), text)

    async def subscribe(self) -> None: ...

    async def started(self) -> None: ...

    async def handle(self, topic: str, text: str) -> None: ...

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        async def poll() -> None:
            while not predicate():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(), timeout)


class ShellyPlug(Device):
    """A Shelly Plus Plug S: Switch.Set / Switch.GetStatus on ``<prefix>/rpc``, status on change."""

    def __init__(self, url: str, prefix: str, *, load_w: float = 1200.0, voltage: float = 230.0) -> None:
        super().__init__(url)
        self.prefix = prefix
        self.output = False
        self.load_w = load_w
        self.voltage = voltage
        #: While > 0, Switch.Set answers with an RPC error.
        self.reject_sets = 0
        self.sets: list[bool] = []

    def status(self) -> dict[str, Any]:
        power = self.load_w if self.output else 0.0
        return {"id": 0, "source": "rpc", "output": self.output, "apower": power, "voltage": self.voltage,
                "current": round(power / self.voltage, 3), "aenergy": {"total": 1234.5}}

    async def subscribe(self) -> None:
        await self.client.subscribe(f"{self.prefix}/rpc")

    async def started(self) -> None:
        await self.client.publish(f"{self.prefix}/online", "true", retain=False)
        await self.publish_status()

    async def publish_status(self) -> None:
        await self.client.publish(f"{self.prefix}/status/switch:0", json.dumps(self.status()))

    async def switch_by_hand(self, on: bool) -> None:
        self.output = on
        await self.publish_status()

    async def handle(self, topic: str, text: str) -> None:
        request = json.loads(text)
        answer: dict[str, Any] = {"id": request["id"], "src": self.prefix, "dst": request["src"]}
        method = request.get("method")
        if method == "Switch.Set":
            self.sets.append(bool(request["params"]["on"]))
            if self.reject_sets > 0:
                self.reject_sets -= 1
                answer["error"] = {"code": -109, "message": "Overpower condition"}
            else:
                answer["result"] = {"was_on": self.output}
                self.output = bool(request["params"]["on"])
                await self.publish_status()
        elif method == "Switch.GetStatus":
            answer["result"] = self.status()
        else:
            answer["error"] = {"code": -114, "message": f"Method {method} failed: not found"}
        await self.client.publish(f"{request['src']}/rpc", json.dumps(answer))


class TasmotaPlug(Device):
    """A Tasmota plug: ``cmnd/<topic>/POWER`` in, ``stat/<topic>/RESULT`` + ``stat/<topic>/POWER`` out."""

    def __init__(self, url: str, topic: str, *, load_w: float = 800.0) -> None:
        super().__init__(url)
        self.topic = topic
        self.output = False
        self.load_w = load_w
        self.commands: list[str] = []
        #: Answer ``{"Command":"Unknown"}`` to this many switch commands.
        self.reject = 0

    async def subscribe(self) -> None:
        await self.client.subscribe(f"cmnd/{self.topic}/#")

    async def started(self) -> None:
        await self.client.publish(f"tele/{self.topic}/LWT", "Online", retain=True)

    def energy(self) -> dict[str, Any]:
        power = self.load_w if self.output else 0
        return {"ENERGY": {"Total": 12.3, "Power": power, "Voltage": 231, "Current": round(power / 231, 3)}}

    async def handle(self, topic: str, text: str) -> None:
        leaf = topic.rsplit("/", 1)[-1]
        if leaf == "POWER":
            if text:
                self.commands.append(text)
                if self.reject > 0:
                    self.reject -= 1
                    await self.client.publish(f"stat/{self.topic}/RESULT", json.dumps({"Command": "Unknown"}))
                    return
                self.output = text.upper() in ("ON", "1")
            word = "ON" if self.output else "OFF"
            await self.client.publish(f"stat/{self.topic}/RESULT", json.dumps({"POWER": word}))
            await self.client.publish(f"stat/{self.topic}/POWER", word)
            await self.client.publish(f"tele/{self.topic}/SENSOR", json.dumps(self.energy()))
        elif leaf == "Status" and text == "10":
            await self.client.publish(f"stat/{self.topic}/STATUS10", json.dumps({"StatusSNS": self.energy()}))

    async def go_offline(self) -> None:
        await self.client.publish(f"tele/{self.topic}/LWT", "Offline", retain=True)


class PlainSwitch(Device):
    """A switch with a command topic and a JSON state topic (``{"state": "ON", "power": 2000}``)."""

    def __init__(self, url: str, base: str, *, load_w: float = 2000.0) -> None:
        super().__init__(url)
        self.base = base
        self.output = False
        self.load_w = load_w

    async def subscribe(self) -> None:
        await self.client.subscribe(f"{self.base}/set")

    async def started(self) -> None:
        await self.report()

    async def report(self) -> None:
        state = {"state": "ON" if self.output else "OFF", "power": self.load_w if self.output else 0.0}
        await self.client.publish(f"{self.base}/state", json.dumps(state))

    async def handle(self, topic: str, text: str) -> None:
        self.output = text == "ON"
        await self.report()


class ValueDevice(Device):
    """A device that takes a number on ``<base>/set`` and echoes what it applies on ``<base>/state``
    (a boiler's % power input, a thermostat's target); ``refuse`` makes it keep its old value."""

    def __init__(self, url: str, base: str, *, initial: float = 0.0) -> None:
        super().__init__(url)
        self.base = base
        self.value = initial
        self.refuse = 0
        self.commands: list[float] = []

    async def subscribe(self) -> None:
        await self.client.subscribe(f"{self.base}/set")

    async def handle(self, topic: str, text: str) -> None:
        number = float(json.loads(text)["value"]) if text.startswith("{") else float(text)
        self.commands.append(number)
        if self.refuse > 0:
            self.refuse -= 1
        else:
            self.value = number
        await self.client.publish(f"{self.base}/state", json.dumps({"value": self.value}))
