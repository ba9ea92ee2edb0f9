"""The gateway's compiled schema check gives the ``ocpp`` library's own verdict on commands to chargers and
their answers: the same payloads pass, the same fail, with the same OCPP error.

The library (``ocpp.messages.validate_payload``, jsonschema) is the oracle here: the check replaced it on the
path of every cut, so where the two disagree the check is wrong. The 1.6 charging profile's limit is
``multipleOf: 0.1``, judged in decimals by both: 21.4 A is a valid limit although the float 21.4 is not an exact
multiple of the float 0.1.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, MessageType, validate_payload

from services.ocpp_gateway import schemas

from .test_flow import PROFILE_16, PROFILE_201


def _with_limit(profile: dict[str, Any], limit: Any, version: str) -> dict[str, Any]:
    payload = copy.deepcopy(profile)
    body = payload["csChargingProfiles"] if version == "1.6" else payload["chargingProfile"]
    schedule = body["chargingSchedule"]
    period = (schedule if version == "1.6" else schedule[0])["chargingSchedulePeriod"][0]
    period["limit"] = limit
    return payload


def _library(version: str, action: str, message_type: int, payload: Any) -> str:
    message = Call("1", action, copy.deepcopy(payload)) if message_type == MessageType.Call else \
        CallResult("1", copy.deepcopy(payload), action)
    try:
        asyncio.run(validate_payload(message, version))
    except OCPPError as exc:
        return type(exc).__name__
    return "valid"


def _ours(version: str, action: str, message_type: int, payload: Any) -> str:
    try:
        schemas.check(version, action, message_type, payload)
    except OCPPError as exc:
        return type(exc).__name__
    return "valid"


CASES = [
    # (version, action, message type, payload, the library's verdict)
    ("1.6", "SetChargingProfile", MessageType.Call, _with_limit(PROFILE_16, 21.4, "1.6"), "valid"),
    ("1.6", "SetChargingProfile", MessageType.Call, _with_limit(PROFILE_16, 16, "1.6"), "valid"),
    ("1.6", "SetChargingProfile", MessageType.Call, _with_limit(PROFILE_16, 0.1 * 3, "1.6"), "FormatViolationError"),
    ("1.6", "SetChargingProfile", MessageType.Call, _with_limit(PROFILE_16, 4.11, "1.6"), "FormatViolationError"),
    ("1.6", "SetChargingProfile", MessageType.Call, _with_limit(PROFILE_16, "16", "1.6"),
     "TypeConstraintViolationError"),
    ("1.6", "SetChargingProfile", MessageType.Call, {"connectorId": 1}, "ProtocolError"),
    ("1.6", "SetChargingProfile", MessageType.Call, {**PROFILE_16, "extra": 1}, "FormatViolationError"),
    ("1.6", "SetChargingProfile", MessageType.CallResult, {"status": "Accepted"}, "valid"),
    ("1.6", "SetChargingProfile", MessageType.CallResult, {"status": "Maybe"}, "FormatViolationError"),
    ("1.6", "RemoteStartTransaction", MessageType.Call,
     {"idTag": "T", "chargingProfile": _with_limit(PROFILE_16, 6.2, "1.6")["csChargingProfiles"]}, "valid"),
    ("1.6", "GetCompositeSchedule", MessageType.CallResult, {"status": "Accepted", "connectorId": 1,
     "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.3}]}},
     "valid"),
    ("2.0.1", "SetChargingProfile", MessageType.Call, _with_limit(PROFILE_201, 4.11, "2.0.1"), "valid"),
    ("2.0.1", "SetChargingProfile", MessageType.Call, {"evseId": 1}, "ProtocolError"),
    ("2.0.1", "SetChargingProfile", MessageType.CallResult, {"status": "Rejected"}, "valid"),
]


@pytest.mark.parametrize(("version", "action", "message_type", "payload", "verdict"), CASES)
def test_the_check_agrees_with_the_library(version: str, action: str, message_type: int, payload: Any,
                                          verdict: str) -> None:
    assert _library(version, action, message_type, payload) == verdict  # the oracle, as the table says
    assert _ours(version, action, message_type, payload) == verdict


def test_the_check_leaves_the_payload_as_it_was() -> None:
    payload = _with_limit(PROFILE_16, 21.4, "1.6")
    before = copy.deepcopy(payload)
    schemas.check("1.6", "SetChargingProfile", MessageType.Call, payload)
    assert payload == before
    assert type(payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]) is float
