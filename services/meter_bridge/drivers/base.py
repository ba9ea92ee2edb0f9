"""The two kinds of driver: MQTT drivers parse messages the runtime hands them; task drivers run
their own loop (poll a device, read a stream) and emit samples until the device fails them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

from shared.payload import PayloadError, parse_json

from ..config import SourceBase
from ..sample import Sample


class Sink(Protocol):
    """Where a task driver hands what it read; ``origin`` says where from (a URL, ``tcp://host:port``)."""

    async def sample(self, sample: Sample, origin: str) -> None: ...

    async def reject(self, origin: str, code: str, message: str, payload: str = "") -> None: ...


class DeviceDataError(ValueError):
    """A device message that cannot be read (malformed JSON, missing fields); reported, not applied."""

    code = "device_data"


class DeviceGone(ConnectionError):
    """The device cannot be reached or stopped talking; the supervisor restarts the driver."""


class MqttDriver(ABC):
    """A device that publishes on MQTT: the bridge subscribes to ``filters`` and calls ``parse``."""

    def __init__(self, source: SourceBase) -> None:
        self.source = source

    @property
    @abstractmethod
    def filters(self) -> list[str]:
        """The topic filters the device publishes on."""

    @abstractmethod
    def parse(self, topic: str, payload: bytes) -> Sample | None:
        """The sample in one message; None when the message holds nothing for us (another component)."""

    def holds_state(self, topic_filter: str) -> bool:
        """Whether each message on ``topic_filter`` holds the whole state of its topic, so that a newer one
        may replace one still waiting (see :mod:`shared.inbox`); False for a stream of partial events."""
        return True


class TaskDriver(ABC):
    """A device the bridge must go and ask: ``run`` loops until the device fails it (then raises)."""

    #: Where the device is (a URL, ``tcp://host:port``), named in error reports.
    origin: str

    def __init__(self, source: SourceBase) -> None:
        self.source = source
        self.origin = source.id

    @abstractmethod
    async def run(self, sink: Sink) -> None:
        """Read the device forever, emitting each sample; raise when the device is gone."""


def load_json(payload: bytes) -> Any:
    """A device's JSON within the bounds of :mod:`shared.payload` (size, nesting, number range)."""
    try:
        return parse_json(payload)
    except PayloadError as exc:
        raise DeviceDataError(str(exc)) from exc


def number(value: Any, what: str) -> float:
    """A JSON value as a float: numbers and numeric strings; bools and the rest are errors."""
    if isinstance(value, bool) or value is None:
        raise DeviceDataError(f"{what}: {value!r} is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise DeviceDataError(f"{what}: {value!r} is not a number")


def optional_number(obj: dict[str, Any], key: str, what: str) -> float | None:
    return number(obj[key], f"{what}.{key}") if obj.get(key) is not None else None
