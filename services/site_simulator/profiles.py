"""Charging profiles as a charge point keeps them, and the composite limit they add up to.

Both OCPP versions come in through :func:`from_v16` / :func:`from_v201` (the ``ocpp`` library's
snake_case dicts) as one :class:`Profile`. The limit in force (:meth:`ProfileStore.limit`):

* per purpose, the profile with the highest stack level that is valid now (``validFrom``/``validTo``)
  and whose schedule runs now (start + ``duration``) wins;
* a transaction's TxProfile beats TxDefaultProfile; a connector's own profile beats connector 0's at the
  same stack level;
* the result is capped by the charge point's max profile (ChargePointMaxProfile /
  ChargingStationMaxProfile) and the charger's rating; with no profile at all the charger offers its
  rating (which is why ampmq installs a baseline).

OCPP 1.6 (§3.13, §7.8-7.13) and 2.0.1 (K01, K08) as the common stacks (EVerest libocpp, MicroOcpp) read
them: a *Relative* schedule counts from the start of the connector's transaction (with no transaction it
starts "now": its first period holds and its duration does not run); ``relative_from="receipt"`` is the
quirk of chargers that count from when they took the profile. *Absolute* starts at ``startSchedule``
(absent: as Relative); *Recurring* repeats ``startSchedule`` daily or weekly. A profile whose ``validTo``
has passed, or whose schedule's ``duration`` has run out, falls away. Every time is the charger's own
clock. Limits in W become A with the schedule's ``numberPhases`` (else the phases in use) at the nominal
voltage.

Installing (:meth:`ProfileStore.install`): a profile with the same id, or the same purpose and stack
level, replaces the one held — in 1.6 on the whole charge point (whichever connector it is on), in 2.0.1
on the same EVSE. A Relative max profile is refused (2.0.1 K01; libocpp in 1.6 too). Clearing
(:meth:`ProfileStore.clear`) removes the profiles that match every criterion given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Purpose = Literal["max", "default", "tx"]
_PURPOSES: dict[str, Purpose] = {
    "ChargePointMaxProfile": "max", "ChargingStationMaxProfile": "max", "TxDefaultProfile": "default",
    "TxProfile": "tx", "ChargingStationExternalConstraints": "max",
}


class ProfileError(ValueError):
    """A profile the charge point cannot take."""


@dataclass(frozen=True, slots=True)
class Period:
    start: float
    limit: float
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    connector: int
    stack_level: int
    purpose: Purpose
    kind: str
    unit: Literal["A", "W"]
    periods: tuple[Period, ...]
    received: datetime
    start_schedule: datetime | None = None
    duration: float | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    recurrency: str | None = None
    transaction_id: str | None = None

    def schedule_start(self, now: datetime, transaction_start: datetime | None = None,
                       relative_from: str = "transaction") -> datetime:
        if self.kind == "Relative" or self.start_schedule is None:
            if relative_from == "receipt":
                return self.received
            return transaction_start if transaction_start is not None else now
        start = self.start_schedule
        if self.kind == "Recurring" and start <= now:
            period = timedelta(days=7 if self.recurrency == "Weekly" else 1)
            start += period * ((now - start) // period)
        return start

    def phases_at(self, now: datetime, transaction_start: datetime | None = None,
                  relative_from: str = "transaction") -> int | None:
        """The ``numberPhases`` of the period in force now (None: not given, or no period in force)."""
        elapsed = (now - self.schedule_start(now, transaction_start, relative_from)).total_seconds()
        current: Period | None = None
        for period in self.periods:
            if period.start <= elapsed:
                current = period
        return None if current is None else current.phases

    def limit_at(self, now: datetime, phases_in_use: int, voltage: float = 230.0,
                 transaction_start: datetime | None = None, relative_from: str = "transaction") -> float | None:
        """The limit in A per phase this profile sets now; None when it does not apply now."""
        if self.valid_from is not None and now < self.valid_from:
            return None
        if self.valid_to is not None and now >= self.valid_to:
            return None
        elapsed = (now - self.schedule_start(now, transaction_start, relative_from)).total_seconds()
        if elapsed < 0 or (self.duration is not None and elapsed >= self.duration):
            return None
        current: Period | None = None
        for period in self.periods:
            if period.start <= elapsed:
                current = period
        if current is None:
            return None
        if self.unit == "A":
            return current.limit
        phases = current.phases or max(1, phases_in_use)
        return current.limit / (voltage * phases)


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ProfileError(f"bad time {value!r}") from exc


def _schedule(raw: dict[str, Any]) -> tuple[Literal["A", "W"], tuple[Period, ...], datetime | None, float | None]:
    unit_raw = raw.get("charging_rate_unit")
    if unit_raw not in ("A", "W"):
        raise ProfileError(f"chargingRateUnit {unit_raw!r} is not A or W")
    unit: Literal["A", "W"] = "A" if unit_raw == "A" else "W"
    periods = tuple(sorted(
        (Period(float(p["start_period"]), float(p["limit"]), p.get("number_phases"))
         for p in raw.get("charging_schedule_period") or []),
        key=lambda p: p.start))
    if not periods or periods[0].start != 0:
        raise ProfileError("a schedule needs a first period starting at 0")
    duration = raw.get("duration")
    return unit, periods, _time(raw.get("start_schedule")), None if duration is None else float(duration)


def _purpose(raw: str) -> Purpose:
    if raw not in _PURPOSES:
        raise ProfileError(f"unknown chargingProfilePurpose {raw!r}")
    return _PURPOSES[raw]


def from_v16(connector: int, raw: dict[str, Any], received: datetime) -> Profile:
    """A 1.6 ``csChargingProfiles``."""
    unit, periods, start, duration = _schedule(raw["charging_schedule"])
    tx = raw.get("transaction_id")
    return Profile(id=int(raw["charging_profile_id"]), connector=connector, stack_level=int(raw["stack_level"]),
                   purpose=_purpose(raw["charging_profile_purpose"]), kind=raw["charging_profile_kind"], unit=unit,
                   periods=periods, received=received, start_schedule=start, duration=duration,
                   valid_from=_time(raw.get("valid_from")), valid_to=_time(raw.get("valid_to")),
                   recurrency=raw.get("recurrency_kind"), transaction_id=None if tx is None else str(tx))


def from_v201(evse: int, raw: dict[str, Any], received: datetime) -> Profile:
    """A 2.0.1 ``chargingProfile`` (its first schedule)."""
    schedules = raw["charging_schedule"]
    unit, periods, start, duration = _schedule(schedules[0] if isinstance(schedules, list) else schedules)
    tx = raw.get("transaction_id")
    return Profile(id=int(raw["id"]), connector=evse, stack_level=int(raw["stack_level"]),
                   purpose=_purpose(raw["charging_profile_purpose"]), kind=raw["charging_profile_kind"], unit=unit,
                   periods=periods, received=received, start_schedule=start, duration=duration,
                   valid_from=_time(raw.get("valid_from")), valid_to=_time(raw.get("valid_to")),
                   recurrency=raw.get("recurrency_kind"), transaction_id=None if tx is None else str(tx))


@dataclass(slots=True)
class ProfileStore:
    """The profiles a charge point holds."""

    rating: float
    profiles: dict[int, Profile] = field(default_factory=dict)
    received: int = 0
    #: Where a Relative schedule counts from: ``transaction`` (the standard's reading) or ``receipt``.
    relative_from: str = "transaction"
    #: 2.0.1: the same purpose and stack level replace a profile on the same EVSE only; 1.6: on the charger.
    per_evse: bool = False

    def install(self, profile: Profile) -> None:
        """Add a profile; one with the same id, or the same purpose and stack level (on the charge point in
        1.6, on the EVSE in 2.0.1), is replaced."""
        if profile.purpose == "max" and profile.kind == "Relative":
            raise ProfileError("a max profile cannot be Relative")
        for pid, old in list(self.profiles.items()):
            same_place = old.connector == profile.connector or not self.per_evse
            if pid == profile.id or (old.purpose == profile.purpose and old.stack_level == profile.stack_level
                                     and same_place):
                del self.profiles[pid]
        self.profiles[profile.id] = profile
        self.received += 1

    def clear(self, profile_id: int | None = None, connector: int | None = None, purpose: str | None = None,
              stack_level: int | None = None) -> bool:
        """Remove the profiles that match every criterion given; True when any was removed."""
        wanted = _purpose(purpose) if purpose is not None else None
        gone = [pid for pid, p in self.profiles.items()
                if (profile_id is None or pid == profile_id)
                and (connector is None or p.connector == connector)
                and (wanted is None or p.purpose == wanted)
                and (stack_level is None or p.stack_level == stack_level)]
        for pid in gone:
            del self.profiles[pid]
        return bool(gone)

    def _winner(self, purpose: Purpose, connectors: tuple[int, ...], now: datetime, phases: int,
                transaction_id: str | None = None, transaction_start: datetime | None = None) -> float | None:
        found = self._winning(purpose, connectors, now, phases, transaction_id, transaction_start)
        return None if found is None else found[0]

    def number_phases(self, connector: int, now: datetime, transaction_id: str | None = None,
                      transaction_start: datetime | None = None) -> int | None:
        """The ``numberPhases`` of the connector's own profile in force (TxProfile, else TxDefaultProfile)."""
        ours = (connector, 0)
        start = transaction_start if transaction_id is not None else None
        found = None
        if transaction_id is not None:
            found = self._winning("tx", ours, now, 3, transaction_id, start)
        if found is None:
            found = self._winning("default", ours, now, 3, transaction_id, start)
        if found is None:
            return None
        return found[1].phases_at(now, start, self.relative_from)

    def _winning(self, purpose: Purpose, connectors: tuple[int, ...], now: datetime, phases: int,
                 transaction_id: str | None = None, transaction_start: datetime | None = None
                 ) -> tuple[float, Profile] | None:
        best: tuple[int, int, float] | None = None
        winner: Profile | None = None
        for p in self.profiles.values():
            if p.purpose != purpose or p.connector not in connectors:
                continue
            if purpose == "tx" and p.transaction_id is not None and p.transaction_id != transaction_id:
                continue
            limit = p.limit_at(now, phases, transaction_start=transaction_start, relative_from=self.relative_from)
            if limit is None:
                continue
            key = (p.stack_level, 1 if p.connector != 0 else 0, limit)
            if best is None or key[:2] > best[:2]:
                best, winner = key, p
        return None if best is None or winner is None else (best[2], winner)

    def limit(self, connector: int, now: datetime, phases_in_use: int = 3, transaction_id: str | None = None,
              transaction_start: datetime | None = None) -> float:
        """The composite limit (A per phase) on ``connector`` at ``now`` (the charger's clock), its
        transaction (if any) started at ``transaction_start``."""
        ours = (connector, 0)
        start = transaction_start if transaction_id is not None else None
        tx = self._winner("tx", ours, now, phases_in_use, transaction_id, start) if transaction_id is not None else None
        own = tx if tx is not None else self._winner("default", ours, now, phases_in_use, transaction_id, start)
        cap = self._winner("max", (0, connector), now, phases_in_use, transaction_id, start)
        limit = self.rating
        for value in (own, cap):
            if value is not None:
                limit = min(limit, value)
        return max(0.0, limit)
