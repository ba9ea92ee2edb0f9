"""Shelly Gen2+ plugs and relays over MQTT RPC.

The device listens on ``<prefix>/rpc`` for JSON-RPC requests (``Switch.Set``, ``Switch.GetStatus``) and
answers on ``<src>/rpc``, ``src`` being the name the request gave; it publishes its switch status on
``<prefix>/status/switch:<id>`` (``output``, ``apower``, ``current``, ``voltage``, ``aenergy.total``),
notifications on ``<prefix>/events/rpc`` and ``true``/``false`` on ``<prefix>/online``.
"""

from __future__ import annotations

import json
from itertools import count
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from shared.config import SectionModel
from shared.mqtt import RawIncoming

from .adapter import PositiveSeconds, json_object
from .relay import RelayDriver, check_device_topic

if TYPE_CHECKING:
    from .adapter import LoadAdapter


class ShellyRelayConfig(SectionModel):
    """A Shelly Gen2+ switch channel."""

    driver: Literal["shelly"] = "shelly"
    #: The device's MQTT topic prefix (its id by default, e.g. ``shellyplusplugs-a8032ab12345``).
    prefix: str
    switch_id: int = Field(default=0, ge=0, le=15)
    #: The ``src`` of our RPC requests: the device answers on ``<rpc_src>/rpc``. Default: derived from the load.
    rpc_src: str | None = None
    #: Ask the device for its status this often (it publishes on change only).
    poll_interval: PositiveSeconds = 30.0

    @field_validator("prefix", "rpc_src")
    @classmethod
    def _plain_topic(cls, value: str | None) -> str | None:
        return None if value is None else check_device_topic(value)


class ShellyRelay(RelayDriver):
    """Switch.Set / Switch.GetStatus over MQTT RPC; status from the status and event topics."""

    _ids = count(1)

    def __init__(self, adapter: LoadAdapter[Any], config: ShellyRelayConfig, label: str = "shelly") -> None:
        super().__init__(adapter, label)
        self.config = config
        self.src = config.rpc_src or f"ampmq-{adapter.site}-{adapter.load}-{config.switch_id}"
        self._pending: dict[int, tuple[str, dict[str, Any], float]] = {}
        #: When the device last pushed its status: an RPC answer to a request sent before that is older news.
        self._pushed_at = -1e18

    @property
    def command_topic(self) -> str:
        return f"{self.config.prefix}/rpc"

    @property
    def poll_interval(self) -> float | None:
        return self.config.poll_interval

    def routes(self) -> None:
        prefix = self.config.prefix
        self.runtime.raw_route(f"{prefix}/status/switch:{self.config.switch_id}", latest=True)(self._on_status)
        self.runtime.raw_route(f"{prefix}/events/rpc")(self._on_event)
        self.runtime.raw_route(f"{prefix}/online")(self._on_online)
        self.runtime.raw_route(f"{self.src}/rpc")(self._on_response)

    async def _rpc(self, method: str, params: dict[str, Any]) -> None:
        request_id = next(self._ids)
        self._pending[request_id] = (method, params, self.adapter.clock.monotonic())
        if len(self._pending) > 64:  # answers that never came
            self._pending.pop(next(iter(self._pending)))
        body = {"id": request_id, "src": self.src, "method": method, "params": params}
        await self.runtime.publish(self.command_topic, json.dumps(body))

    async def send(self, on: bool) -> None:
        await self._rpc("Switch.Set", {"id": self.config.switch_id, "on": on})

    async def poll(self) -> None:
        await self._rpc("Switch.GetStatus", {"id": self.config.switch_id})

    def _apply_status(self, status: dict[str, Any]) -> None:
        if isinstance(status.get("apower"), int | float):
            self.power = float(status["apower"])
        if isinstance(status.get("current"), int | float):
            self.current = float(status["current"])
        if isinstance(status.get("voltage"), int | float):
            self.voltage = float(status["voltage"])
        energy = status.get("aenergy")
        if isinstance(energy, dict) and isinstance(energy.get("total"), int | float):
            self.energy_wh = float(energy["total"])
        if isinstance(status.get("output"), bool):
            self.set_output(status["output"])
        else:
            self.updated()

    async def _on_status(self, msg: RawIncoming) -> None:
        try:
            self._apply_status(json_object(msg.payload))
            self._pushed_at = self.adapter.clock.monotonic()
        except ValueError as exc:
            await self.bad_payload(msg, str(exc))

    async def _on_event(self, msg: RawIncoming) -> None:
        try:
            event = json_object(msg.payload)
        except ValueError as exc:
            await self.bad_payload(msg, str(exc))
            return
        params = event.get("params")
        if event.get("method") in ("NotifyStatus", "NotifyFullStatus") and isinstance(params, dict):
            status = params.get(f"switch:{self.config.switch_id}")
            if isinstance(status, dict):
                self._apply_status(status)
                self._pushed_at = self.adapter.clock.monotonic()

    async def _on_online(self, msg: RawIncoming) -> None:
        if msg.payload.strip() == b"false":
            self.adapter.lost()
        else:
            self.updated()

    async def _on_response(self, msg: RawIncoming) -> None:
        try:
            answer = json_object(msg.payload)
        except ValueError as exc:
            await self.bad_payload(msg, str(exc))
            return
        request_id = answer.get("id")
        request = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if request is None:
            return  # not ours (another switch of the same device) or already answered
        method, params, sent_at = request
        stale = self._pushed_at >= sent_at
        error = answer.get("error")
        if error is not None:
            text = error.get("message", error) if isinstance(error, dict) else error
            code = error.get("code") if isinstance(error, dict) else None
            self.updated()
            self.reject(f"{method} error {code}: {text}")
            return
        result = answer.get("result")
        if stale:
            self.updated()  # the device pushed its status since we asked: that status is newer than this answer
        elif method == "Switch.GetStatus" and isinstance(result, dict):
            self._apply_status(result)
        elif method == "Switch.Set" and isinstance(params.get("on"), bool):
            self.set_output(params["on"])  # done: the status topic may follow, or not (notifications off)
        else:
            self.updated()


__all__ = ["ShellyRelay", "ShellyRelayConfig"]
