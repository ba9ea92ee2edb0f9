"""Tasmota plugs and relays: ``cmnd/<topic>/POWER`` in; ``stat/<topic>/POWER``, ``stat/<topic>/RESULT``,
``tele/<topic>/STATE``, ``tele/<topic>/SENSOR`` (``ENERGY.Power``) and ``tele/<topic>/LWT`` out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from shared.config import SectionModel
from shared.mqtt import RawIncoming

from .adapter import PositiveSeconds, json_object
from .relay import RelayDriver, check_device_topic

if TYPE_CHECKING:
    from .adapter import LoadAdapter

_ON = {"ON", "1", "TRUE"}
_OFF = {"OFF", "0", "FALSE"}


class TasmotaRelayConfig(SectionModel):
    """A Tasmota relay (``relay`` 0 is ``POWER``, n is ``POWERn``)."""

    driver: Literal["tasmota"] = "tasmota"
    #: The device's ``%topic%``.
    topic: str
    relay: int = Field(default=0, ge=0, le=32)
    cmnd_prefix: str = "cmnd"
    stat_prefix: str = "stat"
    tele_prefix: str = "tele"
    #: Ask for the relay and energy state this often (``tele`` comes every TelePeriod, 300 s by default).
    poll_interval: PositiveSeconds = 30.0

    @field_validator("topic", "cmnd_prefix", "stat_prefix", "tele_prefix")
    @classmethod
    def _plain_topic(cls, value: str) -> str:
        return check_device_topic(value)


def _switch_word(value: Any) -> bool | None:
    if isinstance(value, str):
        word = value.strip().upper()
        if word in _ON:
            return True
        if word in _OFF:
            return False
    return None


class TasmotaRelay(RelayDriver):
    def __init__(self, adapter: LoadAdapter[Any], config: TasmotaRelayConfig, label: str = "tasmota") -> None:
        super().__init__(adapter, label)
        self.config = config
        self.key = "POWER" if config.relay == 0 else f"POWER{config.relay}"

    def _topic(self, prefix: str, leaf: str) -> str:
        return f"{prefix}/{self.config.topic}/{leaf}"

    @property
    def command_topic(self) -> str:
        return self._topic(self.config.cmnd_prefix, self.key)

    def command_topics(self) -> list[str]:
        return [self.command_topic, self._topic(self.config.cmnd_prefix, "Status")]

    @property
    def poll_interval(self) -> float | None:
        return self.config.poll_interval

    def routes(self) -> None:
        # Two routes per device (fewer routes: less matching per message), dispatched here by the last level.
        c = self.config
        stat = {self.key: self._on_power, "RESULT": self._on_result, "STATUS10": self._on_sensor,
                "STATUS8": self._on_sensor}
        tele = {"STATE": self._on_result, "SENSOR": self._on_sensor, "LWT": self._on_lwt}
        for prefix, handlers in ((c.stat_prefix, stat), (c.tele_prefix, tele)):

            async def dispatch(msg: RawIncoming, handlers: dict[str, Any] = handlers) -> None:
                handler = handlers.get(msg.topic.rsplit("/", 1)[-1])
                if handler is not None:
                    await handler(msg)

            self.runtime.raw_route(self._topic(prefix, "+"))(dispatch)

    async def send(self, on: bool) -> None:
        await self.runtime.publish(self.command_topic, "ON" if on else "OFF")

    async def poll(self) -> None:
        await self.runtime.publish(self.command_topic, "")
        await self.runtime.publish(self._topic(self.config.cmnd_prefix, "Status"), "10")

    async def _on_power(self, msg: RawIncoming) -> None:
        value = _switch_word(msg.payload.decode("utf-8", "replace"))
        if value is None:
            await self.bad_payload(msg, f"{self.key} is neither ON nor OFF")
            return
        self.set_output(value)

    async def _on_result(self, msg: RawIncoming) -> None:
        try:
            data = json_object(msg.payload)
        except ValueError as exc:
            await self.bad_payload(msg, str(exc))
            return
        if self.key in data:
            value = _switch_word(data[self.key])
            if value is None:
                await self.bad_payload(msg, f"{self.key} is neither ON nor OFF")
                return
            self.set_output(value)
        elif data.get("Command") in ("Unknown", "Error"):
            self.updated()
            self.reject(f"Tasmota answered Command {data['Command']}")
        else:
            self.updated()

    async def _on_sensor(self, msg: RawIncoming) -> None:
        try:
            data = json_object(msg.payload)
        except ValueError as exc:
            await self.bad_payload(msg, str(exc))
            return
        energy = (data.get("StatusSNS") or data).get("ENERGY")
        if isinstance(energy, dict):
            self.power = self._channel(energy.get("Power"))
            self.current = self._channel(energy.get("Current"))
            self.voltage = self._channel(energy.get("Voltage"))
            total = self._channel(energy.get("Total"))
            self.energy_wh = total * 1000.0 if total is not None else self.energy_wh
        self.updated()

    def _channel(self, value: Any) -> float | None:
        """A number, or this relay's entry of a per-channel list."""
        if isinstance(value, list):
            index = max(0, self.config.relay - 1)
            value = value[index] if index < len(value) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    async def _on_lwt(self, msg: RawIncoming) -> None:
        if msg.payload.strip().lower() == b"offline":
            self.adapter.lost()
        else:
            self.updated()


__all__ = ["TasmotaRelay", "TasmotaRelayConfig"]
