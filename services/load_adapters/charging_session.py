"""A charger connector's current (or last) charging session, for people: when it started, how long it has
run and how much energy it delivered — the figures a Home Assistant user looks at first.

Kept from the gateway's retained ``connector/<n>/transaction`` (OCPP 1.6 StartTransaction/StopTransaction,
2.0.1 TransactionEvent) and the connector's meter register. The start's meter reading comes from the
transaction when the charger gave one (1.6 ``meterStart``, a 2.0.1 ``Started`` event with a register
reading), else from the first register reading of the session; a session the adapter first hears of in the
middle (it restarted, or a 2.0.1 ``Updated`` event replaced the retained ``Started`` one) counts from then
and has no start time. A finished session's figures stay until the next one starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.models import ConnectorMeter, TransactionState

Details = dict[str, str | float | bool | None]


@dataclass(slots=True)
class ChargingSession:
    transaction_id: str
    started: datetime | None = None
    start_wh: float | None = None
    ended: datetime | None = None
    #: The latest register reading of the session (the stop reading once it ended).
    last_wh: float | None = None

    @property
    def energy_wh(self) -> float | None:
        if self.start_wh is None or self.last_wh is None:
            return None
        return max(0.0, self.last_wh - self.start_wh)


class SessionTracker:
    def __init__(self) -> None:
        self.session: ChargingSession | None = None

    def transaction(self, state: TransactionState) -> None:
        """A transaction started, changed or ended on the connector."""
        session = self.session
        if session is None or session.transaction_id != state.transaction_id:
            if state.state == "ended" and session is not None and session.ended is not None:
                return  # the end of one we never saw start, after a finished one: keep the finished one
            session = self.session = ChargingSession(state.transaction_id)
            if state.state == "started":
                session.started = state.ts
        if state.meter_start_wh is not None:
            session.start_wh = state.meter_start_wh
        if state.state == "ended":
            session.ended = state.ts
            if state.meter_stop_wh is not None:
                session.last_wh = state.meter_stop_wh

    def meter(self, meter: ConnectorMeter) -> None:
        """A register reading of the connector: the running session's energy moves on."""
        session = self.session
        if session is None or session.ended is not None or meter.energy_wh is None:
            return
        if meter.transaction_id is not None and meter.transaction_id != session.transaction_id:
            return
        if session.start_wh is None:
            session.start_wh = meter.energy_wh
        session.last_wh = meter.energy_wh

    def details(self, now: datetime) -> Details:
        """``session_*`` entries of the load state's details (None while no session is known)."""
        session = self.session
        if session is None:
            return {"session_active": False, "session_energy_wh": None, "session_started": None,
                    "session_seconds": None}
        until = session.ended or now
        energy = session.energy_wh
        return {
            "session_active": session.ended is None,
            "session_energy_wh": round(energy, 1) if energy is not None else None,
            "session_started": session.started.isoformat() if session.started is not None else None,
            "session_seconds": round(max(0.0, (until - session.started).total_seconds()))
            if session.started is not None else None,
        }
