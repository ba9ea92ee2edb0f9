"""What the OCPP gateway publishes about chargers, and the command channel into it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, Strict

from .base import Command, Contract, Leg, Message, Percent, Seconds, Text, TopicId

ShortText = Annotated[str, Strict(), Field(max_length=128)]


class OcppVersion(StrEnum):
    V16 = "1.6"
    V201 = "2.0.1"


class ChargerBoot(Message):
    """Retained on ``<site>/charger/<cp>/boot``: who the charger says it is."""

    site: TopicId
    charger: TopicId
    #: The charge point id as the charger sent it (may differ from the topic id in case/characters).
    ocpp_id: ShortText
    ocpp_version: OcppVersion
    vendor: ShortText = ""
    model: ShortText = ""
    firmware: ShortText | None = None
    serial: ShortText | None = None
    #: What the central system answered (Accepted, Pending, Rejected).
    registration: ShortText = "Accepted"


class ChargerHeartbeat(Message):
    site: TopicId
    charger: TopicId


class ConnectorStatus(Message):
    """Retained on ``<site>/charger/<cp>/connector/<n>/status``.

    ``status`` uses the charger's own words: 1.6 ChargePointStatus (Available, Preparing, Charging,
    SuspendedEV, SuspendedEVSE, Finishing, Reserved, Unavailable, Faulted) or 2.0.1 ConnectorStatus
    (Available, Occupied, Reserved, Unavailable, Faulted); with 2.0.1 the charging state of the
    transaction (Charging, SuspendedEV, SuspendedEVSE, Idle, EVConnected) fills ``charging_state``.
    """

    site: TopicId
    charger: TopicId
    connector: Annotated[int, Strict(), Field(ge=0, le=64)]
    evse: Annotated[int, Strict(), Field(ge=0, le=64)] | None = None
    #: 2.0.1: the connector's id within its EVSE (the topic's ``<n>`` and ``connector`` are the EVSE id).
    connector_id: Annotated[int, Strict(), Field(ge=0, le=64)] | None = None
    status: ShortText
    charging_state: ShortText | None = None
    error_code: ShortText | None = None
    info: ShortText | None = None
    #: The notification's ``timestamp`` in the charger's own clock (``ts`` is when the gateway got it): the
    #: difference shows how far the charger's clock is off.
    charger_time: AwareDatetime | None = None


class SampledValue(Contract):
    """One sampled value as the charger sent it."""

    measurand: ShortText = "Energy.Active.Import.Register"
    value: Annotated[float, Strict(), Field(allow_inf_nan=False)]
    unit: ShortText | None = None
    phase: ShortText | None = None
    context: ShortText | None = None
    location: ShortText | None = None


class ConnectorMeter(Message):
    """Retained on ``<site>/charger/<cp>/connector/<n>/meter``: the latest meter values.

    The convenience fields are filled from ``samples`` when the charger sends them.
    """

    site: TopicId
    charger: TopicId
    connector: Annotated[int, Strict(), Field(ge=0, le=64)]
    transaction_id: ShortText | None = None
    samples: list[SampledValue] = Field(default_factory=list, max_length=256)
    current_import: dict[Leg, float] = Field(default_factory=dict)
    current_offered: float | None = None
    power: float | None = None
    energy_wh: float | None = None
    voltage: dict[Leg, float] = Field(default_factory=dict)
    soc: Percent | None = None
    #: The values' ``timestamp`` in the charger's own clock (``ts`` is when the gateway got them).
    charger_time: AwareDatetime | None = None


class TransactionState(Message):
    """Retained on ``<site>/charger/<cp>/connector/<n>/transaction``."""

    site: TopicId
    charger: TopicId
    connector: Annotated[int, Strict(), Field(ge=0, le=64)]
    transaction_id: ShortText
    state: Literal["started", "updated", "ended"]
    id_tag: ShortText | None = None
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    reason: ShortText | None = None


class ChargerEvent(Message):
    """Published on ``<site>/charger/<cp>/event/<name>``: things that are not state."""

    site: TopicId
    charger: TopicId
    name: ShortText
    data: dict[str, Any] = Field(default_factory=dict)


class OcppCommand(Command):
    """Published on ``<site>/charger/<cp>/cmd/<action>``.

    ``payload`` is the OCPP request in the charger's own version's JSON shape (camelCase), validated
    against the OCPP schema by the gateway before it leaves.
    """

    request_id: Annotated[str, Strict(), Field(min_length=1, max_length=64)]
    payload: dict[str, Any] = Field(default_factory=dict)
    timeout: Seconds = 30.0


class OcppResult(Message):
    """Published on ``<site>/charger/<cp>/result/<action>``: the charger's answer or the error."""

    site: TopicId
    charger: TopicId
    action: ShortText
    request_id: Annotated[str, Strict(), Field(max_length=64)]
    ok: bool
    response: dict[str, Any] | None = None
    #: ``timeout``, ``offline``, ``rejected``, ``schema``, ``unknown_action``, ``call_error``
    error: ShortText | None = None
    message: Text = ""
