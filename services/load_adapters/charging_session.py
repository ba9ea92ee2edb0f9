"""A charger connector's current (or last) charging session, for people: when it started, how long it has
run, how much energy it delivered and how much of that came from solar — the figures a Home Assistant or
evcc user looks at first.

Kept from the gateway's retained ``connector/<n>/transaction`` (OCPP 1.6 StartTransaction/StopTransaction,
2.0.1 TransactionEvent), the connector's status and meter register, and the site's measurement. The start's
meter reading comes from the transaction when the charger gave one (1.6 ``meterStart``, a 2.0.1 ``Started``
event with a register reading), else from the first register reading of the session; a session the adapter
first hears of in the middle (it restarted, or a 2.0.1 ``Updated`` event replaced the retained ``Started``
one) counts from then and has no start time. A finished session's figures stay until the next one starts.

A session ends with its transaction (1.6 StopTransaction, 2.0.1 TransactionEvent ``Ended``) or when the
connector goes ``Available`` while it runs (the car was unplugged and the charger sent no end): then it is
:meth:`SessionTracker.take_finished` once, as a :class:`SessionSummary`. A transaction end the adapter did not
see running (the retained ``ended`` after a restart) is no new session and is not reported.

Solar share: at each meter reading of the connector, the load's power is split into what the site's solar
covered and the rest, from the latest site measurement (no older than ``MEASUREMENT_MAX_AGE``); the session's
share is the energy-weighted mean over the readings (see :func:`solar_power_to_load`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from shared.models import ConnectorMeter, SessionSummary, SiteMeasurement, TransactionState

Details = dict[str, str | float | bool | None]

#: A site measurement older than this (s, against the meter reading) says nothing about the solar share.
MEASUREMENT_MAX_AGE = 120.0
#: A meter reading this long after the previous one (s) does not stand for the gap (the link was down).
MAX_SAMPLE_GAP = 600.0
#: The connector status words (1.6 and 2.0.1) that mean no car is plugged in.
UNPLUGGED = frozenset({"Available"})


def solar_power_to_load(measurement: SiteMeasurement, load_power: float) -> float | None:
    """How much of ``load_power`` (W) the site's solar covers now: the load counts after the rest of the site,
    so what the grid imports and the battery discharges is taken as going to the load first (not solar),
    capped by the solar production. None when the measurement has no grid power or current."""
    if measurement.grid_power is not None:
        grid = measurement.grid_power.value
    elif measurement.grid_current:
        volts = {p: v.value for p, v in measurement.voltage.items()}
        grid = sum(r.value * volts.get(p, 230.0) for p, r in measurement.grid_current.items())
    else:
        return None
    solar = max(0.0, measurement.solar_power.value) if measurement.solar_power is not None else 0.0
    battery = max(0.0, measurement.battery_power.value) if measurement.battery_power is not None else 0.0
    load = max(0.0, load_power)
    return max(0.0, min(load, solar, load - max(0.0, grid) - battery))


@dataclass(slots=True)
class ChargingSession:
    transaction_id: str
    started: datetime | None = None
    start_wh: float | None = None
    ended: datetime | None = None
    #: The latest register reading of the session (the stop reading once it ended).
    last_wh: float | None = None
    id_tag: str | None = None
    reason: str | None = None
    peak_current: float | None = None
    #: Whether the adapter saw it running (only such a session is reported when it ends).
    seen_running: bool = False
    #: The previous meter reading's time, load power and solar power (None: unknown) for the integration.
    sample_at: datetime | None = None
    sample_power: float = 0.0
    sample_solar: float | None = None
    #: Load energy (W·s) over the readings a measurement covered, and the solar part of it.
    covered_ws: float = 0.0
    solar_ws: float = 0.0

    @property
    def energy_wh(self) -> float | None:
        if self.start_wh is None or self.last_wh is None:
            return None
        return max(0.0, self.last_wh - self.start_wh)

    @property
    def solar_fraction(self) -> float | None:
        return self.solar_ws / self.covered_ws if self.covered_ws > 0 else None


class SessionTracker:
    def __init__(self, site: str, load: str, charger: str, connector: int) -> None:
        self.site, self.load, self.charger, self.connector = site, load, charger, connector
        self.session: ChargingSession | None = None
        self._measurement_raw = b""
        self._measurement: SiteMeasurement | None = None
        #: Sessions that ended and are not yet reported, oldest first.
        self._finished: list[SessionSummary] = []

    def transaction(self, state: TransactionState) -> None:
        """A transaction started, changed or ended on the connector."""
        session = self.session
        if session is None or session.transaction_id != state.transaction_id:
            if state.state == "ended" and session is not None and session.ended is not None:
                return  # the end of one we never saw start, after a finished one: keep the finished one
            session = self.session = ChargingSession(state.transaction_id)
            if state.state == "started":
                session.started = state.ts
        if state.id_tag is not None and session.id_tag is None:
            session.id_tag = state.id_tag  # the start's tag (a 1.6 stop may name another one)
        if state.meter_start_wh is not None:
            session.start_wh = state.meter_start_wh
        if state.state != "ended":
            session.seen_running = True
            return
        if state.meter_stop_wh is not None:
            session.last_wh = state.meter_stop_wh
        if session.ended is None:
            session.ended = state.ts
            session.reason = state.reason
            self._finish(session)
        elif session.reason == "unplugged":
            # the transaction's end came after the unplugged status: its reading and reason are better, while
            # the summary is still waiting to be reported
            session.reason = state.reason
            self._finished = [self._summary(session) if s.transaction_id == session.transaction_id else s
                              for s in self._finished]

    def status(self, word: str, ts: datetime) -> None:
        """The connector's status: ``Available`` while a session runs ends it (the car was unplugged)."""
        session = self.session
        if word in UNPLUGGED and session is not None and session.ended is None:
            session.ended = ts
            session.reason = "unplugged"
            self._finish(session)

    def site_measurement(self, payload: bytes) -> None:
        """The site's latest measurement, as published (a cleared topic keeps the one before). It is read only
        when a session's reading needs its solar part: the site's meter reports every second, a charger's
        register far less often, and a thousand adapters parsing every reading was a tenth of their work."""
        if payload:
            self._measurement_raw, self._measurement = payload, None

    @property
    def measurement(self) -> SiteMeasurement | None:
        if self._measurement is None and self._measurement_raw:
            try:
                self._measurement = SiteMeasurement.model_validate_json(self._measurement_raw)
            except ValidationError:  # the allocator reports a malformed measurement; here it says nothing
                self._measurement_raw = b""
        return self._measurement

    def meter(self, meter: ConnectorMeter, load_power: float | None = None, peak_current: float | None = None
              ) -> None:
        """A register reading of the connector, with the load's power (W) and its highest leg current (A)
        from it: the running session's energy, solar part and peak move on."""
        session = self.session
        if session is None or session.ended is not None:
            return
        if meter.transaction_id is not None and meter.transaction_id != session.transaction_id:
            return
        session.seen_running = True
        if meter.energy_wh is not None:
            if session.start_wh is None:
                session.start_wh = meter.energy_wh
            session.last_wh = meter.energy_wh
        if peak_current is not None:
            session.peak_current = max(peak_current, session.peak_current or 0.0)
        if load_power is not None:
            self._sample(session, meter.ts, load_power)

    def _sample(self, session: ChargingSession, at: datetime, power: float) -> None:
        """Integrate the previous reading's power and solar part over the time since (a step per reading)."""
        if session.sample_at is not None and session.sample_solar is not None:
            dt = (at - session.sample_at).total_seconds()
            if 0.0 < dt <= MAX_SAMPLE_GAP:
                session.covered_ws += session.sample_power * dt
                session.solar_ws += session.sample_solar * dt
        measurement = self.measurement
        solar = None
        if measurement is not None and abs((at - measurement.ts).total_seconds()) <= MEASUREMENT_MAX_AGE:
            solar = solar_power_to_load(measurement, power)
        session.sample_at, session.sample_power, session.sample_solar = at, max(0.0, power), solar

    def _finish(self, session: ChargingSession) -> None:
        if session.seen_running:
            self._finished.append(self._summary(session))

    def _summary(self, session: ChargingSession) -> SessionSummary:
        assert session.ended is not None
        energy = session.energy_wh
        fraction = session.solar_fraction
        return SessionSummary(
            ts=session.ended, site=self.site, load=self.load, charger=self.charger, connector=self.connector,
            transaction_id=session.transaction_id, id_tag=session.id_tag, started=session.started,
            ended=session.ended,
            duration=round(max(0.0, (session.ended - session.started).total_seconds()), 1)
            if session.started is not None else None,
            energy_wh=round(energy, 1) if energy is not None else None,
            solar_share=round(100.0 * fraction, 1) if fraction is not None else None,
            solar_energy_wh=round(energy * fraction, 1) if energy is not None and fraction is not None else None,
            peak_current=round(session.peak_current, 2) if session.peak_current is not None else None,
            reason=session.reason,
        )

    def take_finished(self) -> list[SessionSummary]:
        """The sessions that ended since the last call (each once)."""
        finished, self._finished = self._finished, []
        return finished

    def put_back(self, summaries: list[SessionSummary]) -> None:
        """Sessions taken but not reported (the broker was away): first in line again."""
        self._finished[:0] = summaries

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
