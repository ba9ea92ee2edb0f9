"""An OCPP charger connector as a load, driven only through the OCPP gateway's MQTT topics.

In: ``charger_availability`` (online/offline), ``charger_boot`` (the OCPP version), the connector's
``connector_status``, ``connector_meter`` and ``connector_transaction`` (the charging session in the state's
details: see :mod:`.charging_session`), the site's ``measurement`` (the session's solar share),
``charger_result/<action>`` (answers to our commands), and the gateway's own service availability (a gateway
that is gone makes every charger unavailable).
Out: each finished charging session on ``session_event`` and retained on ``session_last``
(:class:`SessionSummary`), and ``charger_command/<action>`` :class:`OcppCommand` s — the charging profiles of
:mod:`.ocpp_profiles`:

* as soon as the charger is online and its version known: the rate unit is asked once
  (``rate_unit: auto``), then a static **baseline** TxDefaultProfile at ``baseline_current`` on
  ``baseline_stack_level`` (permanent): a charger that loses its central system drops to it;
* the setpoint as the **live** TxDefaultProfile on ``stack_level`` with a ``lifetime`` (default 90 s),
  re-sent when the limit changes or every ``renew_every`` (default 30 s; each charger up to 20 % sooner, by
  its id, so that a fleet does not renew in step); a pause is 0 A, never a stop;
  no valid setpoint → the live profile is cleared and the baseline rules. Both are Absolute by default
  (startSchedule in the past; the live one with duration and validTo at the end of its lifetime) so that
  they bind and lapse on every charger, whatever it counts a Relative schedule from (see
  :mod:`.ocpp_profiles`); ids and stack levels are per connector, and a clear names the connector;
* the charger's clock: its timestamps (status and meter values, as the gateway passes them on) against
  when the gateway got them give its skew; Absolute times are written in its clock, and a skew above
  ``clock_warning`` is reported on the errors topic;
* the compliance watchdog: Current.Offered or the draw above the live limit for ``compliance_cycles``
  meter cycles → ClearChargingProfile and re-send; after ``reset_after`` such rounds → Reset, at most
  once per ``reset_cooldown``; every step on the errors topic.

Delivery: a newer live limit is never held back by one still on its way — it goes out at once and the
newest one sent is what counts (answers are matched by ``request_id``; an older answer that arrives late
never overrides a newer one). A charger that comes (back) online or boots gets its profiles at once: the
retry backoff starts anew. And each time the gateway announces ``online`` — it does so once its
subscriptions are acknowledged, so it is listening — every command still waiting for an answer counts as
lost and is sent again at once: after a broker restart, commands published before the gateway had
resubscribed are gone (the broker keeps no copy for a subscriber that is not there yet).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from shared.clock import Clock
from shared.models import (
    ChargerBoot,
    ConnectorMeter,
    ConnectorStatus,
    Leg,
    LoadKind,
    LoadState,
    LoadStatus,
    OcppCommand,
    OcppResult,
    OcppVersion,
    Setpoint,
    TransactionState,
)
from shared.mqtt import OFFLINE, ONLINE, Incoming, RawIncoming, Runtime

from .adapter import Backoff, LoadAdapter, LoadConfig, PositiveSeconds
from .charging_session import SessionTracker
from .ocpp_profiles import (
    ProfileSpec,
    Purpose,
    RateUnit,
    Validity,
    clear_charging_profile,
    rate_unit_from,
    rate_unit_request,
    renewal_interval,
    reset,
    set_charging_profile,
)
from .ocpp_status import Activity, ComplianceWatchdog, activity, clamp_legs, legs_drawing, load_status
from .relay import RelayDriver, SwitchControl
from .switches import RelayConfig, make_relay

GATEWAY_SERVICE = "ocpp-gateway"
#: Every OCPP action this adapter sends (1.6 and 2.0.1 names): the broker's ACL lets it command its own
#: chargers with these and no others (:mod:`shared.acl`).
COMMANDS = ("SetChargingProfile", "ClearChargingProfile", "Reset", "GetConfiguration", "GetVariables")
#: A measured clock skew below this (s) is taken as none: the estimate's own error is the message's delay.
SKEW_TOLERANCE = 5.0
#: How many of the charger's latest timestamps the skew estimate looks at.
SKEW_SAMPLES = 8
#: A command with no result this long after its own timeout (s) has failed: the gateway is gone, or the
#: broker lost it.
PENDING_SLACK = 5.0
_request_ids = itertools.count(1)


class OcppChargerConfig(LoadConfig):
    """One connector (1.6) or EVSE (2.0.1) of a charger the gateway serves."""

    type: Literal["ocpp_charger"]
    #: The charger's topic id as the gateway publishes it.
    charger: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    #: 1.6 connectorId / 2.0.1 evseId.
    connector: int = Field(default=1, ge=1, le=64)
    phases: list[Leg] = Field(default_factory=lambda: [Leg.L1, Leg.L2, Leg.L3], min_length=1, max_length=3)
    min_current: float = Field(default=6.0, ge=0.0, le=1000.0)
    max_current: float = Field(default=16.0, gt=0.0, le=1000.0)
    silent_after: PositiveSeconds = 900.0
    #: SuspendedEV counts as active until the car has drawn nothing for this long.
    idle_after: PositiveSeconds = 60.0
    #: A car that went idle on SuspendedEV (full) stays idle through the SuspendedEVSE our 0 A causes, so it is
    #: not offered current again and again; after this long it is offered current once more (it may want some).
    full_recheck_after: PositiveSeconds = 900.0
    #: Draw below this (A per leg) is nothing.
    drawing_threshold: float = Field(default=0.5, ge=0.0)
    #: Profile ids and stack levels: by default derived from the connector (connector n: baseline id 10·n,
    #: live id 10·n + 1, baseline stack level 2·n - 1, live 2·n), so that two connectors of one charger
    #: never share one (in 1.6 a profile with the same id, or the same purpose and stack level, replaces
    #: the one the charger holds, whichever connector it is on). Loads of one charger that collide anyway
    #: are refused when the config is read (:class:`LoadAdaptersConfig`).
    profile_id: int | None = Field(default=None, ge=1)
    baseline_profile_id: int | None = Field(default=None, ge=1)
    stack_level: int | None = Field(default=None, ge=0, le=99)
    baseline_stack_level: int | None = Field(default=None, ge=0, le=99)
    #: The ChargePointMaxProfile's id (connector 0, stack level 0), when ``charger_max_current`` is set.
    max_profile_id: int = Field(default=1, ge=1)
    #: What the charger may draw per leg with no live profile (the fail-safe).
    baseline_current: float = Field(default=6.0, ge=0.0, le=1000.0)
    #: ``auto``: asked once (GetConfiguration / GetVariables); ``A`` or ``W`` to override.
    rate_unit: Literal["auto", "A", "W"] = "auto"
    #: The live profile's form: ``absolute`` (startSchedule in the past, duration and validTo in the
    #: charger's clock: binds and lapses whatever a charger counts a Relative schedule from) or
    #: ``relative`` (see ``relative_start``). See :mod:`.ocpp_profiles`.
    validity: Validity = Validity.ABSOLUTE
    #: The live profile's lease: a charger that hears nothing more falls back to its baseline after this.
    lifetime: PositiveSeconds = 90.0
    renew_every: PositiveSeconds = 30.0
    #: Quirks: the charger takes stack level 0 only / relative profiles only / watts only.
    stack_level_zero_only: bool = False
    relative_only: bool = False
    watts_only: bool = False
    #: Where the charger counts a Relative schedule from: ``transaction`` (the start of the transaction, as
    #: libocpp and MicroOcpp do; the live profile's duration is then the time the transaction has run plus
    #: ``lifetime``) or ``receipt`` (when it takes the profile). Matters for relative profiles only.
    relative_start: Literal["transaction", "receipt"] = "transaction"
    #: A charger whose clock is off by more than this (s, measured from its own timestamps) is reported on
    #: the errors topic; its Absolute profiles are written in its clock either way.
    clock_warning: PositiveSeconds = 60.0
    command_timeout: PositiveSeconds = 20.0
    #: The compliance watchdog.
    compliance_cycles: int = Field(default=3, ge=1, le=100)
    compliance_tolerance: float = Field(default=1.0, ge=0.0)
    #: Time a new limit gets before the watchdog looks (cars take about 5 s to follow).
    compliance_grace: PositiveSeconds = 15.0
    reset_after: int = Field(default=2, ge=1, le=100)
    reset_cooldown: PositiveSeconds = 1800.0
    #: The whole charger's limit per leg, installed as ChargePointMaxProfile on connector 0 by this load.
    charger_max_current: float | None = Field(default=None, gt=0.0, le=1000.0)
    #: 1p/3p switching: ``ocpp`` for a charger that switches its phases by the live profile's ``numberPhases``
    #: (2.0.1 chargers that report ``ACPhaseSwitchingSupported``; 1.6 chargers that honour it — many ignore
    #: it, leave those at ``none``). The load's state then says it can switch and the allocator decides its
    #: phases (``LoadSettings.phases``); on one phase it uses ``one_phase_leg``.
    #: ``relay``: a contactor behind an MQTT switch (``phase_relay``, on = all phases, off = ``one_phase_leg``
    #: only) switches them; the adapter holds the live profile at 0 A until the relay is where the setpoint's
    #: phases want it, and switches it only after the car has drawn nothing for ``phase_relay_settle``.
    phase_switching: Literal["none", "ocpp", "relay"] = "none"
    phase_relay: RelayConfig | None = None
    phase_relay_settle: PositiveSeconds = 5.0
    one_phase_leg: Leg = Leg.L1
    #: 2.0.1 only: the charger can choose the phase a 1-phase schedule uses (``ACPhaseSwitchingSupported``):
    #: 1-phase periods carry ``phaseToUse`` = ``one_phase_leg``.
    phase_to_use: bool = False

    @model_validator(mode="after")
    def _switching(self) -> OcppChargerConfig:
        if self.phase_switching != "none" and (len(self.phases) < 2 or self.one_phase_leg not in self.phases):
            raise ValueError("phase_switching needs more than one phase and one_phase_leg among them")
        if (self.phase_switching == "relay") != (self.phase_relay is not None):
            raise ValueError("phase_switching: relay needs phase_relay (and phase_relay needs it)")
        return self

    @model_validator(mode="after")
    def _levels(self) -> OcppChargerConfig:
        if self.max_current < self.min_current:
            raise ValueError("max_current is below min_current")
        n = self.connector
        if self.profile_id is None:
            self.profile_id = 10 * n + 1
        if self.baseline_profile_id is None:
            self.baseline_profile_id = 10 * n
        if self.stack_level is None:
            self.stack_level = 0 if self.stack_level_zero_only else min(99, 2 * n)
        if self.baseline_stack_level is None:
            self.baseline_stack_level = min(98, 2 * n - 1)
        if self.stack_level_zero_only:
            self.stack_level = 0
        elif self.stack_level <= self.baseline_stack_level:
            raise ValueError("stack_level must be above baseline_stack_level (the live profile rules over it)")
        if self.profile_id == self.baseline_profile_id and not self.stack_level_zero_only:
            raise ValueError("profile_id and baseline_profile_id must differ")
        if self.max_profile_id in (self.profile_id, self.baseline_profile_id):
            raise ValueError("max_profile_id must differ from the connector's profile ids")
        if self.renew_every >= self.lifetime:
            raise ValueError("renew_every must be shorter than lifetime")
        return self

    @property
    def live_id(self) -> int:
        assert self.profile_id is not None
        return self.profile_id

    @property
    def live_level(self) -> int:
        assert self.stack_level is not None
        return self.stack_level

    def profile_slots(self) -> list[tuple[int, str, int, int]]:
        """(profile id, purpose, stack level, connector) of every profile this load installs."""
        assert self.baseline_profile_id is not None and self.baseline_stack_level is not None
        if self.stack_level_zero_only:
            slots = [(self.live_id, Purpose.TX_DEFAULT.value, 0, self.connector)]
        else:
            slots = [(self.baseline_profile_id, Purpose.TX_DEFAULT.value, self.baseline_stack_level, self.connector),
                     (self.live_id, Purpose.TX_DEFAULT.value, self.live_level, self.connector)]
        if self.charger_max_current is not None:
            slots.append((self.max_profile_id, Purpose.MAX.value, 0, 0))
        return slots


def profile_collisions(loads: list[OcppChargerConfig]) -> list[str]:
    """What two loads of one charger would overwrite of each other: a profile id, or a purpose and stack
    level (OCPP 1.6 replaces a profile with the same id, or the same purpose and stack level, on the whole
    charge point), or the charger's max profile set twice."""
    problems: list[str] = []
    owners: dict[tuple[str, str, object], str] = {}
    for load in loads:
        for pid, purpose, level, _ in load.profile_slots():
            for key in ((load.site, load.charger, ("id", pid)), (load.site, load.charger, ("level", purpose, level))):
                other = owners.setdefault(key, load.id)
                if other != load.id:
                    what = f"profile id {pid}" if key[2][0] == "id" else f"{purpose} stack level {level}"
                    problems.append(f"loads {other} and {load.id} of charger {load.site}/{load.charger} "
                                    f"both use {what}")
    return problems


@dataclass(frozen=True, slots=True)
class Limit:
    """A live limit as sent: per-leg amps, phases, unit, and the charger clock skew its times were written for."""

    current: float
    number_phases: int
    unit: RateUnit
    skew: float = 0.0


@dataclass(slots=True)
class Pending:
    action: str
    purpose: str  # unit, baseline, max, live, clear, reset, rewrite
    sent_at: float
    limit: Limit | None = None
    #: Rises with every command sent (orders answers that arrive out of turn).
    seq: int = 0


class OcppChargerAdapter(LoadAdapter[OcppChargerConfig]):
    def __init__(self, config: OcppChargerConfig, runtime: Runtime, clock: Clock) -> None:
        super().__init__(config, runtime, clock)
        self.cp = config.charger
        #: How long the live profile stands before it is renewed (spread per charger, see renewal_interval).
        self.renew_after = renewal_interval(config.renew_every, f"{config.site}/{config.id}")
        self.online = False
        self.gateway_online: bool | None = None
        self.version: OcppVersion | None = None
        self.boot_ts: Any = None
        self.status: ConnectorStatus | None = None
        self.meter: ConnectorMeter | None = None
        self.unit: RateUnit | None = self._configured_unit()
        self.legs_in_use: list[Leg] = list(config.phases)
        self.suspended_since: float | None = None
        self.last_drawing: float | None = None
        #: When the car went idle on SuspendedEV (full); None while it wants power.
        self.full_since: float | None = None
        self.pending: dict[str, Pending] = {}
        self.retry_at: dict[str, float] = {}
        self.backoff: dict[str, Backoff] = {}
        self.baseline_ok = False
        self.max_ok = config.charger_max_current is None
        #: The live limit the charger accepted last, and when (monotonic).
        self.live: Limit | None = None
        self.live_at: float | None = None
        self.live_cleared = True
        #: The ``seq`` of the live/clear command that ``live`` reflects: an answer to an older one is ignored.
        self._live_seq = -1
        #: The target (a limit, None for a clear) of the last live/clear command that failed.
        self._failed_live: Limit | None = None
        self.watchdog = ComplianceWatchdog(config.compliance_cycles, config.compliance_tolerance)
        self.last_reset: float | None = None
        #: The per-leg draw of a meter reading the watchdog has yet to look at.
        self._compliance_due: list[dict[Leg, float]] = []
        #: Answers to our commands, handled by the loop (handlers never publish on the message path).
        self._results: list[tuple[Pending, OcppResult]] = []
        #: The charger's timestamps minus the gateway's receive times (s), latest last; see :attr:`skew`.
        self.skew_samples: deque[float] = deque(maxlen=SKEW_SAMPLES)
        #: The skew the profiles' times are written for (see :meth:`_check_clock`), and the one last reported.
        self.skew = 0.0
        self.skew_reported = 0.0
        #: The connector's running transaction and when it started (our clock), for Relative profiles.
        self.transaction: str | None = None
        self.transaction_start: datetime | None = None
        #: The current or last charging session (start, duration, energy), for the state's details.
        self.sessions = SessionTracker(config.site, config.id, config.charger, config.connector)
        #: ``phase_switching: relay``: the contactor and the control that keeps it where it is wanted.
        self.phase_relay: RelayDriver | None = None
        self.phase_control: SwitchControl | None = None
        if config.phase_relay is not None:
            self.phase_relay = make_relay(self, config.phase_relay, "phase contactor")
            self.phase_control = SwitchControl(self, self.phase_relay)

    # -- config --------------------------------------------------------------------------------------
    def _configured_unit(self) -> RateUnit | None:
        if self.config.watts_only or self.config.rate_unit == "W":
            return RateUnit.WATTS
        if self.config.rate_unit == "A":
            return RateUnit.AMPS
        return None

    @property
    def validity(self) -> Validity:
        return Validity.RELATIVE if self.config.relative_only else self.config.validity

    # -- routes --------------------------------------------------------------------------------------
    def routes(self) -> None:
        t, site, cp, n = self.topics, self.site, self.cp, self.config.connector
        self.runtime.raw_route(t.charger_availability(site, cp), latest=True)(self._on_availability)
        self.runtime.raw_route(t.service_availability(GATEWAY_SERVICE), latest=True)(self._on_gateway)
        self.runtime.route(t.charger_boot(site, cp), ChargerBoot, latest=True)(self._on_boot)
        # The connector's status and meter are handled one by one, never replaced by a newer one while waiting:
        # the charging session counts every reading (its solar part and peak are integrated over them) and
        # every status (an Available between two others is an unplug). A charger sends few of either.
        self.runtime.route(t.connector_status(site, cp, n), ConnectorStatus)(self._on_status)
        self.runtime.route(t.connector_meter(site, cp, n), ConnectorMeter)(self._on_meter)
        self.runtime.route(t.charger_result(site, cp, "+"), OcppResult)(self._on_result)
        self.runtime.route(t.connector_transaction(site, cp, n), TransactionState)(self._on_transaction)
        self.runtime.raw_route(t.measurement(site), latest=True)(self._on_site_measurement)
        if self.phase_relay is not None:
            self.phase_relay.routes()

    def device_topics(self) -> list[str]:
        topics = [self.topics.charger_command(self.site, self.cp, action) for action in COMMANDS]
        if self.phase_relay is not None:
            topics += self.phase_relay.command_topics()
        return topics

    def published_topics(self) -> list[str]:
        return [*super().published_topics(), self.topics.session_event(self.site, self.load),
                self.topics.session_last(self.site, self.load)]

    @property
    def connected(self) -> bool:
        return self.online and self.gateway_online is not False and self.version is not None

    @property
    def silent(self) -> bool:
        return not self.connected

    def _session_lost(self) -> None:
        """The charger (or the gateway) went away: everything must be installed again, at once when it is
        back (no backoff carried over)."""
        self._commands_lost()
        self.baseline_ok = False
        self.max_ok = self.config.charger_max_current is None
        self.live = None
        self.live_at = None
        self.live_cleared = True
        self._live_seq = -1
        self.watchdog.forget()

    def _commands_lost(self) -> None:
        """Nothing sent is still on its way: no answer is awaited and every retry may go at once."""
        self.pending.clear()
        self.retry_at.clear()
        self.backoff.clear()
        self._failed_live = None

    async def _on_availability(self, msg: RawIncoming) -> None:
        word = msg.payload.decode("utf-8", "replace").strip()
        online = word == ONLINE
        if word not in (ONLINE, OFFLINE):
            await self.report("device_payload", f"charger availability {word[:40]!r} is neither online nor offline",
                              msg.topic, word)
            return
        if online != self.online:
            self._session_lost()
        elif online:
            self._commands_lost()  # online again (a socket replaced, the gateway back): no backoff carried over
        self.online = online
        if online:
            self.heard()
            self.wake()  # online again: whatever was lost is installed at once
        else:
            self.lost()

    async def _on_gateway(self, msg: RawIncoming) -> None:
        online = msg.payload.strip() == ONLINE.encode()
        if self.gateway_online is not False and not online:
            self._session_lost()
        elif online:
            # Every time, a repeated online too: after a broker restart the retained one may be stale and the
            # gateway's fresh one says it has just subscribed — what we sent before then never reached it.
            self._commands_lost()
        self.gateway_online = online
        self.wake()

    async def _on_boot(self, msg: Incoming[ChargerBoot]) -> None:
        boot = msg.payload
        if self.boot_ts is not None and boot.ts != self.boot_ts:
            self._session_lost()  # a rebooted charger may have lost its profiles
            self.skew_samples.clear()  # ... and have another clock
        if self.version is not None and boot.ocpp_version is not self.version and self.config.rate_unit == "auto":
            self.unit = None
        self.boot_ts = boot.ts
        self.version = boot.ocpp_version
        self.heard()
        self.wake()  # a (re)booted charger gets its profiles at once

    def _clock_sample(self, charger_time: datetime | None, received: datetime) -> None:
        if charger_time is not None:
            self.skew_samples.append((charger_time - received).total_seconds())

    async def _on_transaction(self, msg: Incoming[TransactionState]) -> None:
        tx = msg.payload
        if tx.state == "ended":
            self.transaction = self.transaction_start = None
        elif tx.transaction_id != self.transaction:
            # "started" is received when the charger starts it; a later word on a transaction we did not see
            # start (we came up during it) is the earliest start we know.
            self.transaction = tx.transaction_id
            self.transaction_start = tx.ts if tx.state == "started" else self.clock.now()
        self.sessions.transaction(tx)
        self.wake()

    async def _on_site_measurement(self, msg: RawIncoming) -> None:
        self.sessions.site_measurement(msg.payload)

    async def _on_status(self, msg: Incoming[ConnectorStatus]) -> None:
        self.status = msg.payload
        self.sessions.status(msg.payload.status, msg.payload.ts)
        self._clock_sample(msg.payload.charger_time, msg.payload.ts)
        act = self.activity
        now = self.clock.monotonic()
        if act is Activity.SUSPENDED_EV:
            self.suspended_since = self.suspended_since or now
        else:
            self.suspended_since = None
        if act in (Activity.IDLE, Activity.UNAVAILABLE, Activity.FAULTED):
            self.legs_in_use = list(self.config.phases)  # the next car may use other legs
        self.watchdog.forget()
        self.heard()
        self.wake()  # a new status is news for the state, and may end a session

    async def _on_meter(self, msg: Incoming[ConnectorMeter]) -> None:
        meter = msg.payload
        self.meter = meter
        self._clock_sample(meter.charger_time, meter.ts)
        now = self.clock.monotonic()
        legs = clamp_legs({leg: v for leg, v in meter.current_import.items() if leg in self.config.phases},
                          self.config.max_current)
        power = meter.power if meter.power is not None else (
            sum(legs.values()) * self.config.voltage if legs else None)
        self.sessions.meter(meter, power, max(legs.values()) if legs else None)
        if legs and max(legs.values()) >= self.config.drawing_threshold:
            self.last_drawing = now
            detected = legs_drawing(legs, list(self.config.phases), threshold=max(1.0, self.config.drawing_threshold))
            if detected:
                self.legs_in_use = detected
        elif not legs and meter.power is not None and meter.power > self.config.drawing_threshold * 230:
            self.last_drawing = now
        self.heard()
        if len(self._compliance_due) < 32:
            self._compliance_due.append(legs)
        self.wake()

    async def _on_result(self, msg: Incoming[OcppResult]) -> None:
        result = msg.payload
        pending = self.pending.pop(result.request_id, None)
        if pending is None:
            return  # another load's command on the same charger, or an answer too late
        self.heard()
        self._results.append((pending, result))
        self.wake()

    # -- commands ------------------------------------------------------------------------------------
    async def _send(self, action: str, purpose: str, payload: dict[str, Any], limit: Limit | None = None) -> None:
        seq = next(_request_ids)
        request_id = f"{self.load}-{purpose}-{seq}"[:64]
        self.pending[request_id] = Pending(action, purpose, self.clock.monotonic(), limit, seq)
        command = OcppCommand(request_id=request_id, payload=payload, timeout=self.config.command_timeout)
        self.commands.sent += 1
        if not await self.runtime.publish(self.topics.charger_command(self.site, self.cp, action), command):
            self.commands.fail("not_sent")
            del self.pending[request_id]  # never left: the next turn (or the reconnect) sends it again

    def _newest_live(self) -> Pending | None:
        """The newest live or clear command still waiting for its answer."""
        newest = None
        for pending in self.pending.values():  # in the order sent
            if pending.purpose in ("live", "clear"):
                newest = pending
        return newest

    def _live_target(self) -> Limit | None:
        """The live limit the charger will have once what is on its way lands (None: cleared)."""
        newest = self._newest_live()
        if newest is None:
            return self.live
        return newest.limit if newest.purpose == "live" else None

    def _live_held(self, wanted: Limit | None) -> bool:
        """Whether the live limit ``wanted`` (None: cleared) waits: it is already on its way, or it is what
        last failed and its retry time has not come. A different limit is never held back."""
        newest = self._newest_live()
        if newest is not None:
            return (newest.limit if newest.purpose == "live" else None) == wanted
        now = self.clock.monotonic()
        retrying = now < max(self.retry_at.get("live", -1e18), self.retry_at.get("clear", -1e18))
        return retrying and wanted == self._failed_live

    def _busy(self, purpose: str) -> bool:
        if any(p.purpose == purpose for p in self.pending.values()):
            return True
        if any(p.purpose == purpose for p, _ in self._results):
            return True  # answered, not yet handled
        return self.clock.monotonic() < self.retry_at.get(purpose, -1e18)

    def _succeeded(self, pending: Pending, result: OcppResult) -> None:
        self.backoff.pop(pending.purpose, None)
        self.retry_at.pop(pending.purpose, None)
        now = self.clock.monotonic()
        if pending.purpose == "unit":
            assert self.version is not None
            self.unit = rate_unit_from(self.version, result.response or {}) or RateUnit.AMPS
        elif pending.purpose == "baseline":
            self.baseline_ok = True
        elif pending.purpose == "max":
            self.max_ok = True
        elif pending.purpose in ("live", "clear") and pending.seq < self._live_seq:
            return  # a newer live limit was answered first: this older one is not what the charger has
        elif pending.purpose == "live":
            self._live_seq = pending.seq
            if pending.limit != self.live:
                self.watchdog.forget()
            self.live = pending.limit
            self.live_at = now
            self.live_cleared = False
        elif pending.purpose == "clear":
            self._live_seq = pending.seq
            self.live = None
            self.live_at = None
            self.live_cleared = True
        elif pending.purpose == "reset":
            self.last_reset = now

    async def _failed(self, pending: Pending, why: str) -> None:
        backoff = self.backoff.setdefault(pending.purpose,
                                          Backoff(self.config.retry_initial, self.config.retry_max))
        delay = backoff.next_delay()
        self.retry_at[pending.purpose] = self.clock.monotonic() + delay
        if pending.purpose in ("live", "clear"):
            self._failed_live = pending.limit  # only this target waits for the retry; another goes at once
        if pending.purpose == "unit":
            self.unit = RateUnit.AMPS  # the charger cannot say: amps, which every charger takes
            await self.report("rate_unit_unknown", f"{pending.action} failed ({why}); using A", self._topic(pending))
            return
        await self.report("command_failed", f"{pending.action} ({pending.purpose}) failed: {why}; "
                          f"retry in {delay:g} s", self._topic(pending))

    def _topic(self, pending: Pending) -> str:
        return self.topics.charger_command(self.site, self.cp, pending.action)

    async def _expire_pending(self) -> None:
        """Commands the gateway never answered (it is gone, or the broker lost them) count as failed."""
        now = self.clock.monotonic()
        for request_id, pending in list(self.pending.items()):
            if now - pending.sent_at > self.config.command_timeout + PENDING_SLACK:
                del self.pending[request_id]
                await self._failed(pending, "no result from the gateway")

    # -- profiles ------------------------------------------------------------------------------------
    @property
    def measured_skew(self) -> float | None:
        """The charger's clock minus ours (s), from its own timestamps: the largest of the latest samples
        (a timestamp is written before the message travels, so each sample is the skew less a delay)."""
        return max(self.skew_samples) if self.skew_samples else None

    async def _check_clock(self) -> None:
        """Follow the measured skew when it moves by ``SKEW_TOLERANCE`` or more (whole seconds; none when it
        is smaller than that): a new skew re-sends the live profile (its :class:`Limit` changes). A charger
        whose clock is off by more than ``clock_warning`` (and by a new amount) is reported."""
        measured = self.measured_skew
        if measured is None:
            return
        if abs(measured - self.skew) >= SKEW_TOLERANCE:
            self.skew = float(round(measured)) if abs(measured) >= SKEW_TOLERANCE else 0.0
        if abs(measured - self.skew_reported) < self.config.clock_warning:
            return
        self.skew_reported = measured if abs(measured) >= self.config.clock_warning else 0.0
        if abs(measured) >= self.config.clock_warning:
            await self.report("charger_clock", f"the charger's clock is {measured:+.0f} s off the central "
                              f"system's; its profiles are written in its clock")

    def _elapsed(self) -> float:
        """Relative profiles on a charger that counts them from the transaction's start: how long it has run."""
        if self.config.relative_start != "transaction" or self.transaction_start is None:
            return 0.0
        return max(0.0, (self.clock.now() - self.transaction_start).total_seconds())

    def _spec(self, current: float, phases: int, **extra: Any) -> ProfileSpec:
        assert self.version is not None and self.unit is not None
        return ProfileSpec(version=self.version, connector=self.config.connector, current=current,
                           number_phases=phases, unit=self.unit, voltage=self.config.voltage,
                           validity=self.validity, skew=self.skew, **extra)

    def _baseline_spec(self) -> ProfileSpec:
        c = self.config
        assert c.baseline_profile_id is not None and c.baseline_stack_level is not None
        if c.stack_level_zero_only:
            return self._spec(c.baseline_current, len(c.phases), profile_id=c.live_id, stack_level=0)
        return self._spec(c.baseline_current, len(c.phases), profile_id=c.baseline_profile_id,
                          stack_level=c.baseline_stack_level)

    def _max_spec(self, current: float) -> ProfileSpec:
        """The charger's max profile on connector 0: always Absolute (never Relative)."""
        assert self.version is not None and self.unit is not None
        c = self.config
        return ProfileSpec(version=self.version, connector=0, profile_id=c.max_profile_id, stack_level=0,
                           current=current, number_phases=len(c.phases), unit=self.unit, voltage=c.voltage,
                           validity=Validity.ABSOLUTE, purpose=Purpose.MAX, skew=self.skew)

    def _live_spec(self, wanted: Limit) -> ProfileSpec:
        c = self.config
        extra: dict[str, Any] = {"profile_id": c.live_id, "stack_level": c.live_level, "lifetime": c.lifetime,
                                 "elapsed": self._elapsed()}
        if c.stack_level_zero_only:
            extra.update(stack_level=0, then_current=c.baseline_current)
        if c.phase_to_use and wanted.number_phases == 1 and self.version is OcppVersion.V201:
            extra.update(phase_to_use=int(c.one_phase_leg.value[1]))
        return self._spec(wanted.current, wanted.number_phases, **extra)

    def _clear_live(self) -> dict[str, Any]:
        assert self.version is not None
        c = self.config
        return clear_charging_profile(self.version, c.live_id, c.connector, c.live_level)

    def wanted(self) -> Limit | None:
        """The live limit the setpoint asks for (None: no valid setpoint)."""
        if self.setpoint is None or self.setpoint_expired or self.unit is None:
            return None
        c = self.config
        amps = min(self.setpoint.current, c.max_current)
        if amps < c.min_current:
            amps = 0.0  # below what a car can take: pause (never stop the transaction)
        if self.setpoint.phases:
            phases = sum(1 for leg in c.phases if c.legs[leg] in self.setpoint.phases) or len(self.legs_in_use)
        else:
            phases = len(self.legs_in_use)
        if self.phase_relay is not None and self.phase_relay.output is not (phases > 1):
            amps = 0.0  # the contactor is not (known to be) where these phases want it: the car waits at 0 A
        return Limit(round(amps, 1), phases, self.unit, self.skew)

    def _phase_relay_wanted(self) -> bool | None:
        """Where the phase contactor should be now (None: leave it): on for more than one phase, off for one —
        changed only once the car has drawn nothing for ``phase_relay_settle`` (break before make)."""
        if self.phase_relay is None or self.setpoint is None or self.setpoint_expired or not self.setpoint.phases:
            return None
        c = self.config
        on = sum(1 for leg in c.phases if c.legs[leg] in self.setpoint.phases) > 1
        if self.phase_relay.output is on:
            return on
        now = self.clock.monotonic()
        meter = self.meter
        drawing = meter is not None and any(
            amps >= c.drawing_threshold for leg, amps in meter.current_import.items() if leg in c.phases)
        quiet = not drawing and (self.last_drawing is None or now - self.last_drawing >= c.phase_relay_settle)
        paused = self.live is not None and self.live.current == 0.0  # the charger took our 0 A profile
        return on if quiet and paused else None

    async def _sync(self) -> None:
        """Bring the charger's profiles to what they should be; at most one command per purpose in flight,
        except the live limit: a newer one goes out at once (see :meth:`_live_held`)."""
        await self._take_results()
        if not self.connected or self.version is None:
            return
        await self._check_clock()
        c = self.config
        if self.unit is None:
            if not self._busy("unit"):
                action, payload = rate_unit_request(self.version)
                await self._send(action, "unit", payload)
            return
        if not self.baseline_ok and not self._busy("baseline"):
            await self._send("SetChargingProfile", "baseline", set_charging_profile(self._baseline_spec(),
                                                                                    self.clock.now()))
        if not self.max_ok and c.charger_max_current is not None and not self._busy("max"):
            await self._send("SetChargingProfile", "max",
                             set_charging_profile(self._max_spec(c.charger_max_current), self.clock.now()))
        wanted = self.wanted()
        if self._live_held(wanted):
            return
        if wanted is None:
            if not self.live_cleared or self._live_target() is not None:
                if c.stack_level_zero_only:  # the baseline is the same profile: put it back
                    await self._send("SetChargingProfile", "clear",
                                     set_charging_profile(self._baseline_spec(), self.clock.now()))
                else:
                    await self._send("ClearChargingProfile", "clear", self._clear_live())
            return
        now = self.clock.monotonic()
        due = self.live_at is None or now - self.live_at >= self.renew_after
        if wanted != self._live_target() or due:
            await self._send("SetChargingProfile", "live",
                             set_charging_profile(self._live_spec(wanted), self.clock.now()), wanted)

    async def _check_compliance(self, legs: dict[Leg, float]) -> None:
        live, since = self.live, self.live_at
        if live is None or since is None or self.version is None or self.activity is not Activity.ACTIVE:
            return
        if self.clock.monotonic() - since < self.config.compliance_grace:
            return
        meter = self.meter
        offered = meter.current_offered if meter is not None else None
        if offered is not None and live.unit is RateUnit.WATTS and offered > self.config.max_current * 3:
            offered = None  # offered in W by a watts charger: compare the draw only
        drawn = max(legs.values()) if legs else None
        if not self.watchdog.observe(live.current, offered, drawn):
            return
        c = self.config
        now = self.clock.monotonic()
        detail = f"limit {live.current:g} A, offered {offered}, drawn {drawn}"
        cooled = self.last_reset is None or now - self.last_reset >= c.reset_cooldown
        if self.watchdog.failures > c.reset_after and cooled and not self._busy("reset"):
            await self.report("charger_reset", f"the charger ignores its profile after "
                              f"{self.watchdog.failures - 1} re-sends ({detail}): Reset")
            self.last_reset = now
            await self._send("Reset", "reset", reset(self.version))
            self._session_lost()
            return
        await self.report("profile_ignored", f"the charger does not follow its profile for "
                          f"{c.compliance_cycles} cycles ({detail}): clear and re-send "
                          f"(round {self.watchdog.failures})")
        await self._send("ClearChargingProfile", "rewrite", self._clear_live())
        self.live = None
        self.live_at = None
        await self._sync()

    # -- the load contract ---------------------------------------------------------------------------
    @property
    def activity(self) -> Activity:
        if self.status is None or self.version is None:
            return Activity.IDLE
        return activity(self.version, self.status.status, self.status.charging_state)

    def _car_full(self, status: LoadStatus) -> LoadStatus:
        """Keep a full car idle while the charger only reports the suspension our own 0 A caused."""
        now = self.clock.monotonic()
        word = self.status.charging_state or self.status.status if self.status is not None else None
        if status is LoadStatus.IDLE and self.activity is Activity.SUSPENDED_EV:
            self.full_since = self.full_since if self.full_since is not None else now
        elif self.full_since is not None:
            drew_since = self.last_drawing is not None and self.last_drawing > self.full_since
            if word != "SuspendedEVSE" or drew_since or now - self.full_since >= self.config.full_recheck_after:
                self.full_since = None
            else:
                return LoadStatus.IDLE
        return status

    def _idle_since(self) -> float | None:
        """Since when a suspended car has drawn nothing (None: not suspended)."""
        if self.suspended_since is None:
            return None
        return max(x for x in (self.suspended_since, self.last_drawing) if x is not None)

    def _idle_for(self) -> float:
        since = self._idle_since()
        return self.clock.monotonic() - since if since is not None else 0.0

    def state_inputs(self) -> tuple[object, ...]:
        s = self.sessions.session
        status = self._car_full(load_status(self.activity, self._idle_for(), self.config.idle_after))
        return (self.meter, self.status, self.version, self.live, self.unit, self.baseline_ok,
                tuple(self.legs_in_use), status,
                None if s is None else (s.transaction_id, s.started, s.ended, s.energy_wh))

    def build_state(self) -> LoadState:
        c = self.config
        meter = self.meter
        legs: dict[Leg, float] = {}
        if meter is not None:
            legs = clamp_legs({leg: v for leg, v in meter.current_import.items() if leg in c.phases}, c.max_current)
            if not legs and meter.power is not None:
                per_leg = min(c.max_current, self.watts_to_amps(meter.power, len(self.legs_in_use)))
                legs = dict.fromkeys(self.legs_in_use, per_leg)
        draw = {c.legs[leg]: round(amps, 2) for leg, amps in legs.items()}
        status = self._car_full(load_status(self.activity, self._idle_for(), c.idle_after))
        live = self.live
        return self.state(
            kind=LoadKind.EVSE,
            phases_in_use=list(self.legs_in_use),
            phase_switching=c.phase_switching != "none",
            one_phase_leg=c.one_phase_leg,
            min_current=c.min_current,
            max_current=c.max_current,
            draw=draw,
            fallback_current=c.baseline_current,
            power=max(0.0, meter.power) if meter is not None and meter.power is not None else None,
            energy=max(0.0, meter.energy_wh) if meter is not None and meter.energy_wh is not None else None,
            soc=meter.soc if meter is not None else None,
            status=status,
            details={
                "charger": self.cp,
                "connector": c.connector,
                "ocpp_version": self.version.value if self.version else None,
                "ocpp_status": self.status.status if self.status else None,
                "charging_state": self.status.charging_state if self.status else None,
                "offered": meter.current_offered if meter is not None else None,
                "limit": live.current if live else None,
                "unit": self.unit.value if self.unit else None,
                "baseline": self.baseline_ok,
                **self.sessions.details(self.clock.now()),
            },
        )

    async def apply(self, setpoint: Setpoint | None) -> None:
        await self._sync()

    def deadlines(self) -> list[float] | None:
        """The charger reports by itself and every message from it wakes the loop; what changes with time
        alone: a command's answer overdue, a retry, the live profile's renewal, a car going idle or due to be
        offered current again (and the base's: state renewal, setpoint expiry). A phase contactor is polled:
        every tick then."""
        if self.phase_relay is not None:
            return None
        c = self.config
        due = self.base_deadlines()
        due.extend(p.sent_at + c.command_timeout + PENDING_SLACK for p in self.pending.values())
        due.extend(self.retry_at.values())
        if self.live_at is not None:
            due.append(self.live_at + self.renew_after)
        if (idle_since := self._idle_since()) is not None:
            due.append(idle_since + c.idle_after)
        if self.full_since is not None:
            due.append(self.full_since + c.full_recheck_after)
        return due

    async def _take_results(self) -> None:
        """Apply the answers that came in since the last turn."""
        results, self._results = self._results, []
        for pending, result in results:
            if result.ok:
                self._succeeded(pending, result)
            else:
                await self._failed(pending, f"{result.error}: {result.message}"[:300])

    async def _report_sessions(self) -> None:
        """Each finished charging session as an event, and retained as the load's last one."""
        finished = self.sessions.take_finished()
        for n, summary in enumerate(finished):
            if not await self.runtime.publish(self.topics.session_event(self.site, self.load), summary):
                self.sessions.put_back(finished[n:])  # the broker is away: the next turn tries again
                return
            self.log.info("session %s ended: %s Wh, %s %% solar", summary.transaction_id, summary.energy_wh,
                          summary.solar_share)
            await self.runtime.publish(self.topics.session_last(self.site, self.load), summary, retain=True)

    async def tick(self) -> None:
        await self._report_sessions()
        await self._expire_pending()
        await self._take_results()
        due, self._compliance_due = self._compliance_due, []
        for legs in due:
            await self._check_compliance(legs)
        if self.phase_control is not None and self.phase_relay is not None:
            await self.phase_relay.maybe_poll()
            wanted = self._phase_relay_wanted()
            if wanted is not None:
                self.phase_control.want(wanted)
            await self.phase_control.reconcile()
        await self._sync()

    async def on_connect(self) -> None:
        self._session_lost()  # results may have been lost with the link: install again


__all__ = ["OcppChargerAdapter", "OcppChargerConfig"]
