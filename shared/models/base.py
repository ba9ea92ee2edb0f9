"""Base classes and unit types every payload model is built from.

Numbers are strict (the JSON string ``"16"`` is not the number 16), finite (NaN and infinity are
rejected) and held to physical ranges. Timestamps are timezone-aware and serialized as UTC ISO-8601.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, field_validator

from ..payload import PayloadError, check_bounds, parse_json

SCHEMA_VERSION: Literal[1] = 1

#: Current in amperes (per phase). Signed where a direction matters (grid: import positive).
Amps = Annotated[float, Strict(), Field(ge=-1000.0, le=1000.0, allow_inf_nan=False)]
#: A current that cannot be negative (a load's limit or draw).
LoadAmps = Annotated[float, Strict(), Field(ge=0.0, le=1000.0, allow_inf_nan=False)]
#: Voltage (line to neutral) in volts.
Volts = Annotated[float, Strict(), Field(ge=0.0, le=1000.0, allow_inf_nan=False)]
#: Power in watts, signed where a direction matters.
Watts = Annotated[float, Strict(), Field(ge=-1_000_000.0, le=1_000_000.0, allow_inf_nan=False)]
#: A power that cannot be negative.
PositiveWatts = Annotated[float, Strict(), Field(ge=0.0, le=1_000_000.0, allow_inf_nan=False)]
#: Energy in watt-hours.
WattHours = Annotated[float, Strict(), Field(ge=0.0, le=1e12, allow_inf_nan=False)]
#: A percentage, 0 to 100.
Percent = Annotated[float, Strict(), Field(ge=0.0, le=100.0, allow_inf_nan=False)]
#: A duration in seconds.
Seconds = Annotated[float, Strict(), Field(ge=0.0, le=31_536_000.0, allow_inf_nan=False)]
#: Priority: 1 is most important.
Priority = Annotated[int, Strict(), Field(ge=1, le=99)]
#: An id that can stand in a topic.
TopicId = Annotated[str, Strict(), Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
#: A free text of bounded size.
Text = Annotated[str, Strict(), Field(max_length=1000)]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (services take time from ``shared.clock``)."""
    return datetime.now(UTC)


class Phase(StrEnum):
    """A phase of the site's grid connection."""

    A = "A"
    B = "B"
    C = "C"


class Leg(StrEnum):
    """A phase as a load (a charger's L1/L2/L3) sees it; mapped per load to a site phase."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


class Contract(BaseModel):
    """Base of every model in the contract: immutable, finite numbers, tolerant of added fields."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="ignore", use_enum_values=False)


class Message(Contract):
    """A payload published on a topic: carries its schema version and when it was made."""

    v: Literal[1] = SCHEMA_VERSION
    ts: AwareDatetime = Field(default_factory=utcnow)

    @field_validator("ts")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class Command(Contract):
    """A ``.../set`` or command payload: unknown fields are an error, not ignored."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="forbid")

    #: Optional request id, echoed in the state or result that answers the command (zigbee2mqtt style).
    transaction: Annotated[str, Strict(), Field(max_length=64)] | None = None

    @classmethod
    def from_field(cls, field: str, raw: bytes) -> Self:
        """A command that sets one field, from a ``.../set/<field>`` payload (zigbee2mqtt style).

        The payload is JSON when it parses as JSON (``16``, ``true``, ``null``, ``"eco"``), else plain text
        (``solar_only``). Raises ``ValueError`` for an unknown field and ``ValidationError`` for a bad value.
        """
        if field == "transaction" or field not in cls.model_fields:
            raise ValueError(f"{field!r} is not a field of {cls.__name__}")
        check_bounds(raw)
        text = raw.decode("utf-8", "replace").strip()
        try:
            value: Any = parse_json(text)
        except PayloadError:
            value = text
        return cls.model_validate_json(json.dumps({field: value}))

