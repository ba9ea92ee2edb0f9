"""A generic MQTT on/off switch: a command topic with on/off payloads, an optional state topic (plain or
a JSON field), an optional power topic and an optional availability topic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from shared.config import SectionModel
from shared.mqtt import RawIncoming
from shared.payload import PayloadError, parse_json

from .adapter import ValueConfig, extract_number
from .relay import RelayDriver, check_device_topic

if TYPE_CHECKING:
    from .adapter import LoadAdapter


class MqttRelayConfig(SectionModel):
    driver: Literal["mqtt"] = "mqtt"
    command_topic: str
    payload_on: str = "ON"
    payload_off: str = "OFF"
    #: None: the switch reports nothing and is assumed to do what it was told.
    state_topic: str | None = None
    #: JSON field of the state payload holding the state (none: the payload itself).
    state_field: str | None = None
    state_on: str | None = None  # default: payload_on
    state_off: str | None = None  # default: payload_off
    power: ValueConfig | None = None
    availability_topic: str | None = None
    payload_available: str = "online"
    payload_not_available: str = "offline"
    retain: bool = False

    @field_validator("command_topic", "state_topic", "availability_topic")
    @classmethod
    def _plain_topic(cls, value: str | None) -> str | None:
        return None if value is None else check_device_topic(value)


class MqttRelay(RelayDriver):
    def __init__(self, adapter: LoadAdapter[Any], config: MqttRelayConfig, label: str = "switch") -> None:
        super().__init__(adapter, label)
        self.config = config

    @property
    def command_topic(self) -> str:
        return self.config.command_topic

    @property
    def reports_state(self) -> bool:
        return self.config.state_topic is not None

    @property
    def hears_anything(self) -> bool:
        c = self.config
        return c.state_topic is not None or c.power is not None or c.availability_topic is not None

    def routes(self) -> None:
        c = self.config
        if c.state_topic:
            self.runtime.raw_route(c.state_topic)(self._on_state)
        if c.power:
            self.runtime.raw_route(c.power.topic)(self._on_power)
        if c.availability_topic:
            self.runtime.raw_route(c.availability_topic)(self._on_availability)

    async def send(self, on: bool) -> None:
        c = self.config
        await self.runtime.publish(c.command_topic, c.payload_on if on else c.payload_off, retain=c.retain)

    async def _on_state(self, msg: RawIncoming) -> None:
        c = self.config
        text: Any = msg.payload.decode("utf-8", "replace").strip()
        if c.state_field:
            try:
                text = parse_json(text)
                for key in c.state_field.split("."):
                    text = text[key]
            except (PayloadError, KeyError, TypeError, IndexError):
                await self.bad_payload(msg, f"no field {c.state_field!r} in the state")
                return
            if isinstance(text, bool):
                self.set_output(text)
                return
            text = str(text)
        if text == (c.state_on or c.payload_on):
            self.set_output(True)
        elif text == (c.state_off or c.payload_off):
            self.set_output(False)
        else:
            await self.bad_payload(msg, f"state {str(text)[:40]!r} is neither on nor off")

    async def _on_power(self, msg: RawIncoming) -> None:
        assert self.config.power is not None
        try:
            self.power = extract_number(msg.payload, self.config.power.field) * self.config.power.scale
        except ValueError as exc:
            await self.bad_payload(msg, str(exc))
            return
        self.updated()

    async def _on_availability(self, msg: RawIncoming) -> None:
        if msg.payload.decode("utf-8", "replace").strip() == self.config.payload_not_available:
            self.adapter.lost()
        else:
            self.updated()


__all__ = ["MqttRelay", "MqttRelayConfig"]
