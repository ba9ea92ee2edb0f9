"""A number sent to a device topic (a boiler's % power, a thermostat's target), optionally confirmed by an
echo on a state topic; an unconfirmed value is reported and re-sent with backoff, and every value is
re-sent now and then so a device that restarted gets it again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from shared.config import SectionModel
from shared.mqtt import RawIncoming

from .adapter import Backoff, PositiveSeconds, ValueConfig, extract_number
from .relay import check_device_topic

if TYPE_CHECKING:
    from .adapter import LoadAdapter


class ValueCommandConfig(SectionModel):
    topic: str
    #: The payload, ``{value}`` replaced by the number (``{"target": {value}}`` for JSON devices).
    template: str = "{value}"
    decimals: int = Field(default=1, ge=0, le=6)
    retain: bool = False
    #: Where the device echoes the value it applies (optional).
    state: ValueConfig | None = None
    tolerance: float = Field(default=0.05, ge=0.0)
    resend_every: PositiveSeconds = 60.0

    @field_validator("topic")
    @classmethod
    def _plain(cls, value: str) -> str:
        return check_device_topic(value)


class ValueCommand:
    def __init__(self, adapter: LoadAdapter[Any], config: ValueCommandConfig, label: str) -> None:
        self.adapter = adapter
        self.config = config
        self.label = label
        self.wanted: float | None = None
        self.sent: float | None = None
        self.sent_at: float | None = None
        self.reported: float | None = None
        self.confirmed = False
        self.retry_at: float | None = None
        self.backoff = Backoff(adapter.config.retry_initial, adapter.config.retry_max)

    @property
    def command_topic(self) -> str:
        return self.config.topic

    def routes(self) -> None:
        if self.config.state is not None:
            self.adapter.runtime.raw_route(self.config.state.topic)(self._on_state)

    async def _on_state(self, msg: RawIncoming) -> None:
        assert self.config.state is not None
        try:
            self.reported = extract_number(msg.payload, self.config.state.field) * self.config.state.scale
        except ValueError as exc:
            await self.adapter.report("device_payload", f"{self.label}: {exc}", msg.topic,
                                      msg.payload.decode("utf-8", "replace"))
            return
        self.adapter.heard()
        self.adapter.wake()

    def want(self, value: float) -> None:
        value = round(value, self.config.decimals)
        if value != self.wanted:
            self.retry_at = None
            self.backoff.reset()
            self.confirmed = False
        self.wanted = value

    def _matches(self) -> bool:
        return (self.reported is not None and self.wanted is not None
                and abs(self.reported - self.wanted) <= self.config.tolerance)

    async def reconcile(self) -> None:
        if self.wanted is None:
            return
        now = self.adapter.clock.monotonic()
        c = self.config
        if c.state is not None and self.sent == self.wanted and self.sent_at is not None and not self.confirmed:
            if self._matches():
                self.confirmed = True
                self.backoff.reset()
                self.retry_at = None
            elif now - self.sent_at >= self.adapter.config.confirm_timeout and self.retry_at is None:
                delay = self.backoff.next_delay()
                self.retry_at = now + delay
                await self.adapter.report("command_not_confirmed", f"{self.label} did not confirm {self.wanted:g} "
                                          f"(reports {self.reported}); retry in {delay:g} s", c.topic)
                return
        due_retry = self.retry_at is not None and now >= self.retry_at
        due_refresh = self.sent_at is not None and now - self.sent_at >= c.resend_every
        if self.sent != self.wanted or due_retry or due_refresh:
            text = f"{self.wanted:.{c.decimals}f}" if c.decimals else str(int(self.wanted))
            self.adapter.commands.sent += 1
            await self.adapter.runtime.publish(c.topic, c.template.replace("{value}", text), retain=c.retain)
            self.sent = self.wanted
            self.sent_at = now
            self.retry_at = None
            self.confirmed = c.state is None


__all__ = ["ValueCommand", "ValueCommandConfig"]
