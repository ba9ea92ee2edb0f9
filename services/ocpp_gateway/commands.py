"""The command channel: ``<site>/charger/<cp>/cmd/<Action>`` → an OCPP CALL → ``.../result/<Action>``.

The action is spelled as in OCPP (``SetChargingProfile``); the payload is the OCPP request in the
charger's version's camelCase JSON. It is validated against that version's JSON schema (the schemas and
validator of the ``ocpp`` package) before anything is sent. The answer is an :class:`OcppResult`:
``ok`` with the charger's ``response``, or ``error`` — ``offline``, ``unknown_action``, ``schema`` (our
payload, nothing sent), ``busy`` (too many commands waiting for this charger), ``timeout``,
``call_error`` (the charger answered with a CALLERROR), ``invalid_response`` (its answer breaks the
schema) or ``rejected`` (it answered with a refusing status such as ``Rejected`` or ``NotSupported``).
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.exceptions import OCPPError  # type: ignore[import-untyped]

from shared.models import OcppCommand, OcppResult, OcppVersion

from .session import CallErrorReceived, ChargerOffline, ChargerSession, InvalidResponse

log = logging.getLogger("ampmq.ocpp-gateway.commands")

#: What a central system may ask a 1.6 charge point (core, smart charging, firmware, reservation,
#: local list, remote trigger and security extension profiles).
V16_ACTIONS = frozenset({
    "CancelReservation", "CertificateSigned", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
    "ClearChargingProfile", "DataTransfer", "DeleteCertificate", "ExtendedTriggerMessage", "GetCompositeSchedule",
    "GetConfiguration", "GetDiagnostics", "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog",
    "InstallCertificate", "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow", "Reset",
    "SendLocalList", "SetChargingProfile", "SignedUpdateFirmware", "TriggerMessage", "UnlockConnector",
    "UpdateFirmware",
})
#: What a CSMS may ask a 2.0.1 charging station.
V201_ACTIONS = frozenset({
    "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache", "ClearChargingProfile",
    "ClearDisplayMessage", "ClearVariableMonitoring", "CostUpdated", "CustomerInformation", "DataTransfer",
    "DeleteCertificate", "GetBaseReport", "GetChargingProfiles", "GetCompositeSchedule", "GetDisplayMessages",
    "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport", "GetReport",
    "GetTransactionStatus", "GetVariables", "InstallCertificate", "PublishFirmware", "RequestStartTransaction",
    "RequestStopTransaction", "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "SetDisplayMessage",
    "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile", "SetVariableMonitoring", "SetVariables",
    "TriggerMessage", "UnlockConnector", "UnpublishFirmware", "UpdateFirmware",
})
ACTIONS: dict[OcppVersion, frozenset[str]] = {OcppVersion.V16: V16_ACTIONS, OcppVersion.V201: V201_ACTIONS}

#: Answer statuses that mean the charger did not do what it was asked.
REFUSALS = frozenset({"Rejected", "NotSupported", "NotImplemented", "UnknownVendorId", "UnknownMessageId",
                      "UnlockFailed", "UnknownConnector", "Failed", "Faulted", "Occupied"})


def refusal(response: dict[str, Any]) -> str | None:
    """The refusing status of an answer, if it is one."""
    status = response.get("status")
    return status if isinstance(status, str) and status in REFUSALS else None


async def execute(session: ChargerSession, action: str, command: OcppCommand, timeout: float) -> OcppResult:
    """Run one command against a connected charger and say how it went (never raises)."""

    def result(ok: bool, *, response: dict[str, Any] | None = None, error: str | None = None,
               message: str = "") -> OcppResult:
        return OcppResult(site=session.site, charger=session.charger, action=action[:128],
                          request_id=command.request_id, ok=ok, response=response, error=error,
                          message=message[:1000], ts=session.now())

    try:
        response = await session.request(action, command.payload, timeout)
    except OCPPError as exc:
        session.report("schema", f"{action} command {command.request_id}: {exc.code}: {exc.details or exc.description}",
                       str(command.payload))
        return result(False, error="schema", message=f"{exc.code}: {exc.details.get('cause') if exc.details else ''}"
                      if isinstance(exc.details, dict) else f"{exc.code}: {exc.description}")
    except ChargerOffline as exc:
        return result(False, error="offline", message=str(exc))
    except TimeoutError:
        session.report("timeout", f"{action} command {command.request_id}: no answer within {timeout:g}s")
        return result(False, error="timeout", message=f"no answer within {timeout:g}s")
    except CallErrorReceived as exc:
        return result(False, error="call_error", message=str(exc),
                      response={"errorCode": exc.code, "errorDescription": exc.description,
                                "errorDetails": exc.details})
    except InvalidResponse as exc:
        session.report("invalid_response", f"{action} command {command.request_id}: {exc}", str(exc.payload))
        payload = exc.payload if isinstance(exc.payload, dict) else None
        return result(False, error="invalid_response", response=payload, message=str(exc))
    refused = refusal(response)
    if refused is not None:
        return result(False, error="rejected", response=response, message=f"the charger answered {refused}")
    return result(True, response=response)
