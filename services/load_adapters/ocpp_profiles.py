"""OCPP payloads the charger adapter sends through the gateway, built by pure functions.

* :func:`set_charging_profile` — a ``SetChargingProfile`` request (1.6 ``csChargingProfiles`` on a
  ``connectorId``; 2.0.1 ``chargingProfile`` on an ``evseId``) for a TxDefaultProfile (or a
  ChargePointMaxProfile / ChargingStationMaxProfile on connector 0), limit in A or W, ``numberPhases`` set,
  optionally falling back to a second limit inside the same schedule (for chargers that take stack
  level 0 only and so cannot hold a baseline under the live profile).
* :func:`clear_charging_profile` (scoped to the connector), :func:`reset`, :func:`rate_unit_request` /
  :func:`rate_unit_from`.

The two forms of a profile, and why (OCPP 1.6 §3.13 / §7.8-7.13, 2.0.1 K01):

* **Absolute** (the default): ``startSchedule`` in the past, so the first period is in force the moment
  the charger takes the profile whatever it thinks "now" is; a live profile also carries
  ``duration`` (from ``startSchedule`` to the end of its lifetime) and ``validTo`` (the end of its
  lifetime), so it falls away after ``lifetime`` seconds and the baseline rules again. Every time is
  written in the charger's own clock: ``now`` shifted by the measured ``skew``. It does not depend on
  where a charger counts a Relative schedule from.
* **Relative** (chargers that take nothing else): OCPP leaves a Relative schedule's start to the charger
  ("e.g. the start of the session"); the common stacks count from the start of the transaction, some
  from receipt. ``elapsed`` (the seconds the transaction has run, 0 for a charger that counts from
  receipt) is added to the duration, so the profile lapses ``lifetime`` after it was sent either way.
* A max profile (ChargePointMaxProfile / ChargingStationMaxProfile) is always Absolute: 2.0.1 forbids a
  Relative one and libocpp refuses it in 1.6 too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.models import OcppVersion


class RateUnit(StrEnum):
    AMPS = "A"
    WATTS = "W"


class Validity(StrEnum):
    """The profile's form (its ``chargingProfileKind``)."""

    ABSOLUTE = "absolute"  # startSchedule in the past, duration and validTo in the charger's clock
    RELATIVE = "relative"  # duration only, counted from where the charger counts a Relative schedule


class Purpose(StrEnum):
    TX_DEFAULT = "TxDefaultProfile"
    MAX = "ChargePointMaxProfile"  # 2.0.1: ChargingStationMaxProfile


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """One charging profile, in the adapter's words."""

    version: OcppVersion
    connector: int
    profile_id: int
    stack_level: int
    #: Per-leg current (A); converted to W with ``voltage`` × ``number_phases`` when ``unit`` is W.
    current: float
    number_phases: int
    unit: RateUnit = RateUnit.AMPS
    voltage: float = 230.0
    #: None: a permanent profile (the baseline). Else its lifetime in seconds.
    lifetime: float | None = None
    validity: Validity = Validity.ABSOLUTE
    purpose: Purpose = Purpose.TX_DEFAULT
    #: Per-leg current the schedule falls to after ``lifetime`` (stack-level-0-only chargers).
    then_current: float | None = None
    #: The charger's clock minus ours (s): Absolute times are written in the charger's clock.
    skew: float = 0.0
    #: Relative only: seconds since the point the charger counts the schedule from (the transaction's
    #: start; 0 when it counts from receipt), added so that the profile still lapses ``lifetime`` from now.
    elapsed: float = 0.0
    #: 2.0.1, one phase, a charger that can choose it: the phase (1-3, its L1-L3) a 1-phase period uses.
    phase_to_use: int | None = None

    @property
    def absolute(self) -> bool:
        """Absolute form: asked for, or a max profile (never Relative)."""
        return self.validity is Validity.ABSOLUTE or self.purpose is Purpose.MAX

    def limit(self, amps: float | None = None) -> float:
        """The schedule's limit in the profile's unit: A to 0.1, W to 1."""
        amps = self.current if amps is None else amps
        if self.unit is RateUnit.WATTS:
            return float(round(amps * self.voltage * self.number_phases))
        return float(round(amps, 1))


def ocpp_time(moment: datetime) -> str:
    """OCPP date-time: UTC, ISO 8601 with a ``Z``, whole seconds."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


#: How far before "now" an Absolute live profile's schedule starts: the first period must be in force
#: when the charger takes the profile even if its clock is this much behind our estimate of it.
LIVE_BACKDATE = 900.0
#: How far before "now" a permanent Absolute profile (baseline, max) starts.
PERMANENT_BACKDATE = 86400.0


def _profile_body(spec: ProfileSpec, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The profile's kind/validity fields and its schedule."""
    periods: list[dict[str, Any]] = [{"startPeriod": 0, "limit": spec.limit(), "numberPhases": spec.number_phases}]
    if spec.phase_to_use is not None and spec.number_phases == 1 and spec.version is not OcppVersion.V16:
        periods[0]["phaseToUse"] = spec.phase_to_use  # 2.0.1 K01: used when numberPhases is 1
    schedule: dict[str, Any] = {"chargingRateUnit": spec.unit.value}
    body: dict[str, Any] = {"chargingProfileKind": "Absolute" if spec.absolute else "Relative"}
    charger_now = now + timedelta(seconds=round(spec.skew))
    #: Seconds from the schedule's start to "now" (in the charger's counting).
    before_now = spec.elapsed
    if spec.absolute:
        before_now = PERMANENT_BACKDATE if spec.lifetime is None else LIVE_BACKDATE
        schedule["startSchedule"] = ocpp_time(charger_now - timedelta(seconds=before_now))
    if spec.lifetime is not None:
        end = int(before_now + spec.lifetime)
        if spec.then_current is not None:
            # One profile holds both: the live limit for its lifetime, then the fallback for good.
            periods.append({"startPeriod": end, "limit": spec.limit(spec.then_current),
                            "numberPhases": spec.number_phases})
        else:
            schedule["duration"] = end
            if spec.absolute:
                body["validTo"] = ocpp_time(charger_now + timedelta(seconds=spec.lifetime))
    schedule["chargingSchedulePeriod"] = periods
    return body, schedule


def set_charging_profile(spec: ProfileSpec, now: datetime) -> dict[str, Any]:
    """The ``SetChargingProfile`` request payload for ``spec`` in the charger's version."""
    body, schedule = _profile_body(spec, now)
    if spec.version is OcppVersion.V16:
        profile = {"chargingProfileId": spec.profile_id, "stackLevel": spec.stack_level,
                   "chargingProfilePurpose": spec.purpose.value, **body, "chargingSchedule": schedule}
        return {"connectorId": spec.connector, "csChargingProfiles": profile}
    purpose = "ChargingStationMaxProfile" if spec.purpose is Purpose.MAX else spec.purpose.value
    profile = {"id": spec.profile_id, "stackLevel": spec.stack_level, "chargingProfilePurpose": purpose,
               **body, "chargingSchedule": [{"id": spec.profile_id, **schedule}]}
    return {"evseId": spec.connector, "chargingProfile": profile}


def clear_charging_profile(version: OcppVersion, profile_id: int, connector: int, stack_level: int,
                           purpose: Purpose = Purpose.TX_DEFAULT) -> dict[str, Any]:
    """``ClearChargingProfile`` for one profile of one connector: its id (unique per connector, see the
    config's defaults) and the connector, purpose and stack level it was set with, so that a charger that
    matches on the criteria (all of them must match) clears that profile only and never another
    connector's."""
    if version is OcppVersion.V16:
        return {"id": profile_id, "connectorId": connector, "chargingProfilePurpose": purpose.value,
                "stackLevel": stack_level}
    word = "ChargingStationMaxProfile" if purpose is Purpose.MAX else purpose.value
    return {"chargingProfileId": profile_id, "chargingProfileCriteria": {
        "evseId": connector, "chargingProfilePurpose": word, "stackLevel": stack_level}}


def reset(version: OcppVersion) -> dict[str, Any]:
    """A ``Reset`` that lets a running session end cleanly where the charger can."""
    return {"type": "Soft"} if version is OcppVersion.V16 else {"type": "OnIdle"}


def rate_unit_request(version: OcppVersion) -> tuple[str, dict[str, Any]]:
    """The action and payload that ask which charging rate unit the charger takes."""
    if version is OcppVersion.V16:
        return "GetConfiguration", {"key": ["ChargingScheduleAllowedChargingRateUnit"]}
    return "GetVariables", {"getVariableData": [
        {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "RateUnit"}}]}


def rate_unit_from(version: OcppVersion, response: dict[str, Any]) -> RateUnit | None:
    """The unit to use from the answer to :func:`rate_unit_request` (amps when both are allowed)."""
    values: list[str] = []
    if version is OcppVersion.V16:
        for entry in response.get("configurationKey") or []:
            if isinstance(entry, dict) and entry.get("key") == "ChargingScheduleAllowedChargingRateUnit":
                values.append(str(entry.get("value") or ""))
    else:
        for entry in response.get("getVariableResult") or []:
            if isinstance(entry, dict) and entry.get("attributeStatus") == "Accepted":
                values.append(str(entry.get("attributeValue") or ""))
    words = {w.strip().lower() for value in values for w in value.replace(";", ",").split(",") if w.strip()}
    if words & {"current", "a"}:
        return RateUnit.AMPS
    if words & {"power", "w"}:
        return RateUnit.WATTS
    return None


def renewal_interval(renew_every: float, key: str) -> float:
    """How often one charger's live profile is renewed: ``renew_every`` shortened by 0-20 % by a hash of
    ``key`` (the load), so that a thousand chargers that started together do not renew together, in one
    burst of commands every ``renew_every``."""
    return renew_every * (1.0 - 0.2 * zlib.crc32(key.encode()) / 2**32)


__all__ = [
    "LIVE_BACKDATE",
    "PERMANENT_BACKDATE",
    "ProfileSpec",
    "Purpose",
    "RateUnit",
    "Validity",
    "clear_charging_profile",
    "ocpp_time",
    "rate_unit_from",
    "rate_unit_request",
    "renewal_interval",
    "reset",
    "set_charging_profile",
]
