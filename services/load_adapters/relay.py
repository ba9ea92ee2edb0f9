"""A relay behind a device protocol, and the control loop that makes it follow a wanted state.

:class:`RelayDriver` is what a device type implements (Shelly RPC, Tasmota, a generic MQTT switch): its
topics, how to send on/off, and what the device reports (output, power). :class:`SwitchControl` keeps the
relay at the wanted state: it sends the command, waits for the device to confirm it, reports a rejection
or a missing confirmation on the errors topic and retries with backoff; it keeps minimum on and off times
(except for a safety cut), and it switches an off relay back on as soon as it is allowed — a relay turned
off by hand or held off by its minimum off time is never stranded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from shared.mqtt import RawIncoming

from .adapter import Backoff

if TYPE_CHECKING:
    from .adapter import LoadAdapter


def check_device_topic(value: str) -> str:
    """A device topic or prefix we publish to or subscribe on: no wildcards, no empty levels at the ends."""
    if not value or "+" in value or "#" in value or value.startswith("/") or value.endswith("/"):
        raise ValueError(f"device topic {value!r} must be a plain topic (no wildcards, no leading/trailing '/')")
    return value


class RelayDriver(ABC):
    """One relay of a device; the adapter it belongs to hears about every report."""

    def __init__(self, adapter: LoadAdapter[Any], label: str = "relay") -> None:
        self.adapter = adapter
        self.runtime = adapter.runtime
        self.label = label
        #: What the device reports: output (None until it says), power (W), current (A), voltage, energy.
        self.output: bool | None = None
        self.power: float | None = None
        self.current: float | None = None
        self.voltage: float | None = None
        self.energy_wh: float | None = None
        #: When the output last changed (monotonic), None when unknown.
        self.changed_at: float | None = None
        #: A rejection the device sent for the last command, picked up by :class:`SwitchControl`.
        self.rejection: str | None = None
        self._last_poll = -1e18

    @property
    @abstractmethod
    def command_topic(self) -> str:
        """Where commands go (named in error reports)."""

    def command_topics(self) -> list[str]:
        """Every topic the driver publishes on (commands and polls)."""
        return [self.command_topic]

    @abstractmethod
    def routes(self) -> None:
        """Declare the device's topics."""

    @abstractmethod
    async def send(self, on: bool) -> None:
        """Send the on/off command."""

    async def poll(self) -> None:
        """Ask the device for its state (devices that report only on change)."""
        return None

    @property
    def poll_interval(self) -> float | None:
        return None

    @property
    def reports_state(self) -> bool:
        """False for a switch with no state topic: it is assumed to do what it was told."""
        return True

    async def maybe_poll(self) -> None:
        interval = self.poll_interval
        now = self.adapter.clock.monotonic()
        if interval is not None and now - self._last_poll >= interval:
            self._last_poll = now
            await self.poll()

    # -- for subclasses ----------------------------------------------------------------------------
    def set_output(self, value: bool) -> None:
        if value != self.output:
            if self.output is not None:
                self.changed_at = self.adapter.clock.monotonic()
            self.output = value
        self.updated()

    def updated(self) -> None:
        self.adapter.heard()
        self.adapter.device_update(self)

    def reject(self, message: str) -> None:
        self.rejection = message
        self.adapter.wake()

    async def bad_payload(self, msg: RawIncoming, why: str) -> None:
        await self.adapter.report("device_payload", f"{self.label}: {why}", msg.topic,
                                  msg.payload.decode("utf-8", "replace"))


class SwitchControl:
    """Keeps one relay at the wanted state, within its minimum on/off times, retrying rejected commands."""

    def __init__(self, adapter: LoadAdapter[Any], driver: RelayDriver, *, min_on: float = 0.0,
                 min_off: float = 0.0) -> None:
        self.adapter = adapter
        self.driver = driver
        self.min_on = min_on
        self.min_off = min_off
        self.desired: bool | None = None
        self.force = False
        self.backoff = Backoff(adapter.config.retry_initial, adapter.config.retry_max)
        self.pending_since: float | None = None
        self.retry_at: float | None = None
        self.attempts = 0

    def want(self, on: bool, *, force: bool = False) -> None:
        """Ask for ``on``; ``force``: a safety cut that does not wait for the minimum on time."""
        if on != self.desired:
            self.pending_since = None
            self.retry_at = None
            self.backoff.reset()
        self.desired = on
        self.force = force

    def hold_remaining(self) -> float:
        """Seconds until the minimum on/off time lets the relay change to the wanted state (0: free)."""
        out, changed = self.driver.output, self.driver.changed_at
        if self.desired is None or out is None or changed is None or out == self.desired:
            return 0.0
        elapsed = self.adapter.clock.monotonic() - changed
        if self.desired:
            return max(0.0, self.min_off - elapsed)
        return 0.0 if self.force else max(0.0, self.min_on - elapsed)

    async def reconcile(self) -> None:
        """Send, confirm, report and retry as needed; call it on every tick and every change."""
        desired = self.desired
        if desired is None:
            return
        now = self.adapter.clock.monotonic()
        if self.driver.rejection is not None:
            why, self.driver.rejection = self.driver.rejection, None
            if self.pending_since is not None:
                await self._failed("command_rejected", f"{self.driver.label} rejected {_word(desired)}: {why}")
                return
        if self.driver.output == desired:
            if self.pending_since is not None or self.retry_at is not None:
                self.pending_since = None
                self.retry_at = None
                self.attempts = 0
                self.backoff.reset()
            return
        if self.pending_since is not None:
            if now - self.pending_since < self.adapter.config.confirm_timeout:
                return
            await self._failed("command_not_confirmed",
                               f"{self.driver.label} did not confirm {_word(desired)} within "
                               f"{self.adapter.config.confirm_timeout:g} s")
            return
        if self.retry_at is not None and now < self.retry_at:
            return
        if self.hold_remaining() > 0:
            return
        if self.adapter.silent and self.driver.reports_state and self.driver.output is not None:
            return  # a silent device cannot confirm; try again once it speaks
        self.attempts += 1
        self.pending_since = now
        self.adapter.commands.sent += 1
        await self.driver.send(desired)
        if not self.driver.reports_state:
            self.driver.set_output(desired)

    async def _failed(self, error: str, message: str) -> None:
        now = self.adapter.clock.monotonic()
        self.pending_since = None
        delay = self.backoff.next_delay()
        self.retry_at = now + delay
        await self.adapter.report(error, f"{message}; attempt {self.attempts}, retry in {delay:g} s",
                                  self.driver.command_topic)


def _word(on: bool) -> str:
    return "on" if on else "off"


__all__ = ["RelayDriver", "SwitchControl", "check_device_topic"]
