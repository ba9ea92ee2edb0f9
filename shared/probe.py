"""A small MQTT client for tests, benchmarks and the demo: publish, and await what arrives.

    async with Probe(url) as probe:
        await probe.subscribe("ampmq/#")
        await probe.publish(topic, model_or_text, retain=True)
        msg = await probe.expect(topic_filter, timeout=5, where=lambda m: m.json()["current"] == 0)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiomqtt
from pydantic import BaseModel

from .mqtt import BrokerAddress, paho_of
from .write_through import WriteThrough

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.payload)

    def model(self, model: type[M]) -> M:
        return model.model_validate_json(self.payload)


class Probe:
    """Records every message on its subscriptions; ``expect`` waits for a matching one."""

    def __init__(self, url: str | BrokerAddress, identifier: str | None = None) -> None:
        self.address = BrokerAddress.parse(url) if isinstance(url, str) else url
        self._client = self.address.client(identifier or f"ampmq-probe-{uuid.uuid4().hex[:8]}")
        self.messages: list[Received] = []
        self._seen = 0
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._writer: WriteThrough | None = None

    async def __aenter__(self) -> Probe:
        await self._client.__aenter__()
        self._writer = WriteThrough(paho_of(self._client), asyncio.get_running_loop())
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(exc_type, exc, tb)

    async def _read(self) -> None:
        async for message in self._client.messages:
            raw = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
            async with self._changed:
                self.messages.append(Received(str(message.topic), raw, bool(message.retain)))
                self._changed.notify_all()

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        await self._client.subscribe(topic_filter, qos=qos)

    async def publish(
        self, topic: str, payload: BaseModel | str | bytes | dict[str, Any] | None, *, retain: bool = False,
        qos: int = 1,
    ) -> None:
        data: str | bytes
        if payload is None:
            data = b""
        elif isinstance(payload, BaseModel):
            data = payload.model_dump_json()
        elif isinstance(payload, dict):
            data = json.dumps(payload)
        else:
            data = payload
        await self._client.publish(topic, data, qos=qos, retain=retain)

    def send(self, topic: str, payload: str | bytes) -> None:
        """Publish at QoS 0 and return, the message already written to the socket: a device's reading, as a
        benchmark's simulated meters send hundreds a second without a task or a future each."""
        if self._writer is None:
            raise RuntimeError("the probe is not connected")
        info = self._writer.publish(topic, payload, 0, False)
        if info.rc != 0:
            raise aiomqtt.MqttCodeError(info.rc, f"could not publish to {topic}")

    def mark(self) -> int:
        """Remember how far we have read: ``expect(..., after=mark)`` ignores older messages."""
        return len(self.messages)

    async def expect(
        self,
        topic_filter: str,
        *,
        timeout: float = 5.0,
        where: Callable[[Received], bool] | None = None,
        after: int = 0,
    ) -> Received:
        """The first message (from index ``after`` on) on ``topic_filter`` that satisfies ``where``."""

        def find() -> Received | None:
            for msg in self.messages[after:]:
                if aiomqtt.Topic(msg.topic).matches(topic_filter) and (where is None or where(msg)):
                    return msg
            return None

        async def wait() -> Received:
            async with self._changed:
                while (found := find()) is None:
                    await self._changed.wait()
                return found

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            seen = [m.topic for m in self.messages[after:] if aiomqtt.Topic(m.topic).matches(topic_filter)]
            raise AssertionError(
                f"no message on {topic_filter} within {timeout}s matched; saw {len(seen)} on it: {seen[-5:]}"
            ) from None

    def on(self, topic_filter: str, after: int = 0) -> list[Received]:
        """Every message received so far on ``topic_filter``."""
        return [m for m in self.messages[after:] if aiomqtt.Topic(m.topic).matches(topic_filter)]
