"""What a charger connector's OCPP words mean for the load contract, as pure functions.

* :func:`load_status` — 1.6 ChargePointStatus or 2.0.1 ConnectorStatus + ChargingState → LoadStatus:
  Preparing, Charging, SuspendedEVSE (2.0.1: Occupied/EVConnected, Charging, SuspendedEVSE) are active;
  SuspendedEV is active until the car has drawn nothing for ``idle_after`` (the adapter keeps that clock);
  Available, Reserved (2.0.1 also ChargingState Idle) are idle; Finishing finishing; Faulted faulted;
  Unavailable unavailable.
* :func:`legs_drawing` — the legs a car actually uses, from the per-leg current (a 1-phase car on a
  3-phase charger uses L1 only, which frees two phases for others).
* :func:`clamp_legs` — per-leg draw held to the charger's maximum (some chargers report the 3-phase total
  on one leg).
* :class:`ComplianceWatchdog` — counts meter cycles where Current.Offered or the draw exceeds the profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.models import Leg, LoadStatus, OcppVersion


class Activity(StrEnum):
    """The adapter's reading of a connector's status, before the SuspendedEV timer."""

    ACTIVE = "active"
    SUSPENDED_EV = "suspended_ev"  # active until nothing drawn for idle_after
    IDLE = "idle"
    FINISHING = "finishing"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"


V16_STATUS: dict[str, Activity] = {
    "Available": Activity.IDLE,
    "Preparing": Activity.ACTIVE,
    "Charging": Activity.ACTIVE,
    "SuspendedEVSE": Activity.ACTIVE,
    "SuspendedEV": Activity.SUSPENDED_EV,
    "Finishing": Activity.FINISHING,
    "Reserved": Activity.IDLE,
    "Unavailable": Activity.UNAVAILABLE,
    "Faulted": Activity.FAULTED,
}

V201_CONNECTOR: dict[str, Activity] = {
    "Available": Activity.IDLE,
    "Occupied": Activity.ACTIVE,  # refined by the charging state
    "Reserved": Activity.IDLE,
    "Unavailable": Activity.UNAVAILABLE,
    "Faulted": Activity.FAULTED,
}

V201_CHARGING_STATE: dict[str, Activity] = {
    "Charging": Activity.ACTIVE,
    "EVConnected": Activity.ACTIVE,
    "SuspendedEVSE": Activity.ACTIVE,
    "SuspendedEV": Activity.SUSPENDED_EV,
    "Idle": Activity.IDLE,
}

_LOAD_STATUS = {
    Activity.ACTIVE: LoadStatus.ACTIVE,
    Activity.SUSPENDED_EV: LoadStatus.ACTIVE,
    Activity.IDLE: LoadStatus.IDLE,
    Activity.FINISHING: LoadStatus.FINISHING,
    Activity.FAULTED: LoadStatus.FAULTED,
    Activity.UNAVAILABLE: LoadStatus.UNAVAILABLE,
}


def activity(version: OcppVersion, status: str, charging_state: str | None = None) -> Activity:
    """The activity of a connector; an unknown word counts as faulted (not counted on, reported)."""
    if version is OcppVersion.V16:
        return V16_STATUS.get(status, Activity.FAULTED)
    base = V201_CONNECTOR.get(status, Activity.FAULTED)
    if status == "Occupied" and charging_state is not None:
        return V201_CHARGING_STATE.get(charging_state, Activity.ACTIVE)
    return base


def load_status(act: Activity, idle_for: float, idle_after: float) -> LoadStatus:
    """The load status; ``idle_for``: seconds the car has drawn nothing while SuspendedEV."""
    if act is Activity.SUSPENDED_EV and idle_for >= idle_after:
        return LoadStatus.IDLE
    return _LOAD_STATUS[act]


def clamp_legs(current: dict[Leg, float], max_current: float) -> dict[Leg, float]:
    """Per-leg draw, each leg held to 0..``max_current``."""
    return {leg: min(max(0.0, amps), max_current) for leg, amps in current.items()}


def legs_drawing(current: dict[Leg, float], wired: list[Leg], *, threshold: float = 1.0) -> list[Leg] | None:
    """The wired legs the car draws on, or None when it draws too little to tell.

    A leg counts when it carries at least ``threshold`` A and at least a quarter of the strongest leg
    (a 1-phase car shows some noise on the other legs).
    """
    strongest = max((current.get(leg, 0.0) for leg in wired), default=0.0)
    if strongest < threshold:
        return None
    used = [leg for leg in wired if current.get(leg, 0.0) >= max(threshold, strongest / 4)]
    return used or None


@dataclass(slots=True)
class ComplianceWatchdog:
    """Counts consecutive meter cycles where the charger does not follow the profile.

    A cycle disagrees when Current.Offered or the strongest leg's draw exceeds the profile limit by more
    than ``tolerance`` A. After ``cycles`` disagreeing cycles in a row :meth:`observe` returns True (the
    adapter clears and re-sends); each such escalation counts a failure until a cycle agrees again.
    """

    cycles: int = 3
    tolerance: float = 1.0
    disagreeing: int = 0
    failures: int = 0

    def observe(self, limit: float, offered: float | None, drawn: float | None) -> bool:
        """One meter cycle under ``limit`` (A per leg); True: time to act."""
        over = [v for v in (offered, drawn) if v is not None and v > limit + self.tolerance]
        if not over:
            self.disagreeing = 0
            self.failures = 0
            return False
        self.disagreeing += 1
        if self.disagreeing >= self.cycles:
            self.disagreeing = 0
            self.failures += 1
            return True
        return False

    def forget(self) -> None:
        self.disagreeing = 0


__all__ = [
    "V16_STATUS",
    "V201_CHARGING_STATE",
    "V201_CONNECTOR",
    "Activity",
    "ComplianceWatchdog",
    "activity",
    "clamp_legs",
    "legs_drawing",
    "load_status",
]
