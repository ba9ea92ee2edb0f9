"""The common base every load adapter implements.

An adapter maps one device to the generic load contract:

* config → :class:`LoadState` out, retained on ``topics.load_state(site, load)``, with the device's
  availability (``online``/``offline``) retained on ``topics.load_availability(site, load)``;
* :class:`Setpoint` in on ``topics.setpoint(site, load)`` → device commands (:meth:`LoadAdapter.apply`);
* device silent for ``silent_after`` seconds → state ``unavailable`` (the allocator stops counting on it);
* a setpoint past its ``valid_until`` → the adapter falls back to its safe state on its own
  (``apply(None)``), whether the allocator, the broker link or anything else went away;
* a command the device rejects → :meth:`LoadAdapter.report` on the site's errors topic, and a retry
  paced by :class:`Backoff`.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field, model_validator

from shared.clock import Clock, real_seconds, wait_for_event
from shared.config import SectionModel
from shared.models import ErrorReport, Leg, LoadState, LoadStatus, Phase, Reason, Setpoint
from shared.models.load import DEFAULT_LEGS
from shared.moderation import Moderator
from shared.mqtt import OFFLINE, ONLINE, Incoming, RawIncoming, Runtime
from shared.payload import PayloadError, parse_json
from shared.spare_time import SpareTime
from shared.topics import ID_PATTERN

SERVICE = "load-adapters"
#: A turn for a deadline comes this long after it (seconds of the service's clock), so that it finds it
#: passed whichever way its check compares.
DEADLINE_SLACK = 0.001

#: Setpoint reasons that cut for safety: an adapter never holds a load on against them (minimum on
#: times are device comfort, the fuse comes first).
SAFETY_REASONS = frozenset(
    {Reason.FUSE_LIMIT, Reason.CIRCUIT_LIMIT, Reason.IMPORT_LIMIT, Reason.IMBALANCE_LIMIT, Reason.STALE_DATA}
)

#: Error codes that say a command did not take effect on the device (counted by :class:`CommandCounts`).
COMMAND_FAILURES = frozenset({"command_failed", "command_rejected", "command_not_confirmed"})
#: A load's error reports: at most REPORTS_PER_LOAD per REPORT_WINDOW seconds, the rest counted and summed up
#: once (a device whose every payload fails, or a charger failing every command on a saturated machine, must
#: not flood the errors topic and the log, nor take the CPU the others' cuts need).
REPORTS_PER_LOAD = 20
REPORT_WINDOW = 10.0

LoadId = Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
PositiveSeconds = Annotated[float, Field(gt=0.0, le=86_400.0)]
NonNegativeSeconds = Annotated[float, Field(ge=0.0, le=86_400.0)]


class LoadConfig(SectionModel):
    """What every load's config has; each adapter type adds its device options."""

    site: LoadId
    id: LoadId
    name: str = ""
    #: How the load's legs are wired to the site's phases.
    legs: dict[Leg, Phase] = Field(default_factory=lambda: dict(DEFAULT_LEGS))
    #: The legs the load draws on (a 1-phase plug on L1: ``[L1]``).
    phases: list[Leg] = Field(default_factory=lambda: [Leg.L1], min_length=1, max_length=3)
    voltage: float = Field(default=230.0, gt=0.0, le=1000.0)
    circuit: LoadId | None = None
    #: No word from the device for this long → unavailable.
    silent_after: PositiveSeconds = 90.0
    #: The state is re-published at least this often, so its ``ts`` shows it is alive.
    state_interval: PositiveSeconds = 10.0
    #: How often the adapter checks silence, expiry and pending commands.
    tick: PositiveSeconds = 1.0
    #: How long a command may go unconfirmed before it counts as rejected.
    confirm_timeout: PositiveSeconds = 5.0
    #: Retry pacing after a rejected or unconfirmed command.
    retry_initial: PositiveSeconds = 2.0
    retry_max: PositiveSeconds = 60.0
    #: After start, how long to wait for a retained setpoint before applying the safe state.
    startup_grace: NonNegativeSeconds = 3.0

    @model_validator(mode="after")
    def _phases_wired(self) -> LoadConfig:
        missing = [leg for leg in self.phases if leg not in self.legs]
        if missing:
            raise ValueError(f"phases {[str(m) for m in missing]} are not wired in legs")
        if len(set(self.phases)) != len(self.phases):
            raise ValueError("phases repeats a leg")
        return self


C = TypeVar("C", bound=LoadConfig)


@dataclass(slots=True)
class Backoff:
    """Exponential retry delays: ``initial``, ×2 each failure, capped at ``maximum``; ``reset`` on success."""

    initial: float
    maximum: float
    failures: int = 0

    def next_delay(self) -> float:
        delay: float = min(self.maximum, self.initial * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


@dataclass(slots=True)
class RollingMean:
    """The mean of the samples taken within the last ``window`` seconds (measured power while on)."""

    window: float
    samples: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, t: float, value: float) -> None:
        self.samples.append((t, value))
        self.trim(t)

    def trim(self, now: float) -> None:
        while self.samples and self.samples[0][0] < now - self.window:
            self.samples.popleft()

    @property
    def mean(self) -> float | None:
        if not self.samples:
            return None
        return sum(v for _, v in self.samples) / len(self.samples)


class ValueConfig(SectionModel):
    """A number read from any MQTT topic: the plain payload, or a field of a JSON payload."""

    topic: str = Field(min_length=1)
    #: Dotted path into a JSON payload (``ENERGY.Power``, ``params.temperature:0.tC``); none: the payload is a number.
    field: str | None = None
    scale: float = 1.0


def extract_number(payload: bytes, path: str | None) -> float:
    """The number at ``path`` in a JSON payload (or the payload itself); ValueError when there is none."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        data: Any = parse_json(text)
    except PayloadError as exc:
        raise ValueError(f"payload is not a number or JSON: {text[:60]!r} ({exc})") from exc
    if path:
        for key in path.split("."):
            if isinstance(data, dict) and key in data:
                data = data[key]
            elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
                data = data[int(key)]
            else:
                raise ValueError(f"payload has no field {path!r}")
    if isinstance(data, bool) or not isinstance(data, int | float):
        raise ValueError(f"{path or 'payload'} is not a number: {str(data)[:60]!r}")
    value = float(data)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{path or 'payload'} is not finite")
    return value


def json_object(payload: bytes) -> dict[str, Any]:
    """A JSON object payload, or ValueError."""
    try:
        data = parse_json(payload)
    except PayloadError as exc:
        raise ValueError(f"payload is not usable JSON: {payload[:60]!r} ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError("payload is not a JSON object")
    return data


@dataclass(slots=True)
class CommandCounts:
    """The commands an adapter sent its device (or the gateway), and those that failed, by error code (for
    the metrics: :mod:`.metrics`)."""

    sent: int = 0
    failed: dict[str, int] = field(default_factory=dict)

    def fail(self, error: str) -> None:
        self.failed[error] = self.failed.get(error, 0) + 1


class LoadAdapter(ABC, Generic[C]):
    """One controllable load: its device in, the load contract out."""

    def __init__(self, config: C, runtime: Runtime, clock: Clock) -> None:
        self.config = config
        self.runtime = runtime
        self.clock = clock
        self.topics = runtime.topics
        self.site = config.site
        self.load = config.id
        self.log = logging.getLogger(f"ampmq.load-adapters.{config.site}.{config.id}")
        #: The setpoint in force (None: none received, or it expired and the safe state applies).
        self.setpoint: Setpoint | None = None
        self.last_seen: float | None = None
        self._available: bool | None = None
        self._last_state: dict[str, Any] | None = None
        self._last_inputs: tuple[bool, tuple[object, ...] | None] | None = None
        self._last_state_at = -1e18
        self._started = clock.monotonic()
        self._fallback_applied = False
        self._setpoint_changed = False
        self._stopping = False
        self._wake = asyncio.Event()
        #: The spare-time ticket a routine turn waits for (shared/spare_time.py), while it waits.
        self._ticket: asyncio.Future[None] | None = None
        self.commands = CommandCounts()
        self._moderator = Moderator(clock, REPORTS_PER_LOAD, REPORT_WINDOW)

    # -- what each adapter type provides -----------------------------------------------------------
    @abstractmethod
    def routes(self) -> None:
        """Declare the device's topics on ``self.runtime``."""

    @abstractmethod
    def build_state(self) -> LoadState:
        """The load's state as the device reports it (the base marks it unavailable when silent)."""

    @abstractmethod
    async def apply(self, setpoint: Setpoint | None) -> None:
        """Drive the device to ``setpoint``; ``None``: the safe state (no valid setpoint)."""

    async def tick(self) -> None:
        """Periodic device work: polls, confirmations, retries. Called on every turn of the loop: every
        ``config.tick`` seconds, or for an adapter with :meth:`deadlines`, when news comes or one is due."""

    def state_inputs(self) -> tuple[object, ...] | None:
        """Everything :meth:`build_state` reads, what it derives from the clock included, or None (the
        default): the state is built anew each turn. With inputs given, a turn in which none of them changed
        builds nothing until ``state_interval`` is over: most turns of a thousand idle chargers' loops, whose
        building and comparing of an unchanged state was nine tenths of the adapters' work at rest."""
        return None

    def deadlines(self) -> list[float] | None:
        """When (``clock.monotonic()``) a turn must come though nothing wakes the loop: what changes with
        time alone — a command's timeout, a retry, a renewal, a state that ages. None (the default): the
        loop turns every ``tick``, for devices it polls. An adapter whose device reports by itself and whose
        handlers wake the loop on every news names them (with :meth:`base_deadlines`): a thousand idle
        chargers' loops then sleep until their next renewal instead of turning every second."""
        return None

    def base_deadlines(self) -> list[float]:
        """The base's own: the state's renewal, the setpoint's expiry, the end of the startup grace, silence."""
        now = self.clock.monotonic()
        due = [self._last_state_at + self.config.state_interval]
        if self.setpoint is not None:
            due.append(now + (self.setpoint.valid_until - self.clock.now()).total_seconds())
        elif not self._fallback_applied:
            due.append(self._started + self.config.startup_grace)
        if self.last_seen is not None:
            due.append(self.last_seen + self.config.silent_after)
        return due

    def quiet_for(self) -> float:
        """How long the loop may sleep unless woken: until the nearest deadline still ahead (a hair past it,
        so the turn finds it passed), at most ``state_interval``; ``tick`` for an adapter without deadlines."""
        due = self.deadlines()
        if due is None:
            return self.config.tick
        now = self.clock.monotonic()
        ahead = [t for t in due if t > now]
        return min(min(ahead, default=now + self.config.state_interval) - now + DEADLINE_SLACK,
                   self.config.state_interval)

    async def on_connect(self) -> None:
        """Called after each (re)connect to the broker."""

    def device_topics(self) -> list[str]:
        """The topics this adapter sends the device its commands on (none by default)."""
        return []

    def published_topics(self) -> list[str]:
        """Every topic this adapter publishes on; the broker's ACL is generated from it (:mod:`shared.acl`)."""
        return [self.state_topic, self.topics.load_availability(self.site, self.load), self.topics.errors(self.site),
                *self.device_topics()]

    # -- helpers for adapters ------------------------------------------------------------------------
    @property
    def state_topic(self) -> str:
        return self.topics.load_state(self.site, self.load)

    def state(self, **fields: Any) -> LoadState:
        """A :class:`LoadState` with this load's identity, wiring and circuit filled in."""
        base: dict[str, Any] = {
            "site": self.site,
            "load": self.load,
            "name": self.config.name,
            "legs": dict(self.config.legs),
            "phases_in_use": list(self.config.phases),
            "circuit": self.config.circuit,
        }
        base.update(fields)
        return LoadState(**base)

    def draw_from_current(self, per_leg: float, legs: list[Leg] | None = None) -> dict[Phase, float]:
        """The same current on every leg in use, as draw per site phase."""
        return {self.config.legs[leg]: max(0.0, per_leg) for leg in (legs or self.config.phases)}

    def watts_to_amps(self, watts: float, legs: int | None = None) -> float:
        """Per-leg current of a balanced load drawing ``watts``."""
        return max(0.0, watts) / (self.config.voltage * (legs or len(self.config.phases)))

    def amps_to_watts(self, amps: float, legs: int | None = None) -> float:
        return max(0.0, amps) * self.config.voltage * (legs or len(self.config.phases))

    def heard(self) -> None:
        """The device said something: it is alive."""
        self.last_seen = self.clock.monotonic()
        if self._available is not True:
            self.wake()

    def device_update(self, source: object) -> None:
        """A device driver has new readings (``source``); adapters may sample them."""
        self.wake()

    def lost(self) -> None:
        """The device said it is gone (an LWT ``offline``)."""
        self.last_seen = None
        self.wake()

    @property
    def silent(self) -> bool:
        return self.last_seen is None or self.clock.monotonic() - self.last_seen > self.config.silent_after

    def wake(self) -> None:
        """Run the loop now (a state change worth publishing)."""
        self._wake.set()
        if self._ticket is not None:
            SpareTime.now(self._ticket)

    @property
    def setpoint_expired(self) -> bool:
        return self.setpoint is None or self.clock.now() >= self.setpoint.valid_until

    async def report(self, error: str, message: str, topic: str | None = None, payload: str = "") -> None:
        """An :class:`ErrorReport` on the site's errors topic, and the log, in moderation (``REPORTS_PER_LOAD``
        per ``REPORT_WINDOW``; those held back are summed up in one ``reports_suppressed`` with the next report
        after the window). A command failure is counted whether reported or not."""
        if error in COMMAND_FAILURES:
            self.commands.fail(error)
        allowed, held_back = self._moderator.allow()
        if held_back:
            await self._publish_report("reports_suppressed",
                                       f"load {self.load}: {self._moderator.summary(held_back, 'problems')}")
        if allowed:
            await self._publish_report(error, message, topic, payload)

    async def _publish_report(self, error: str, message: str, topic: str | None = None, payload: str = "") -> None:
        self.log.warning("%s: %s", error, message)
        report = ErrorReport(
            service=SERVICE, topic=(topic or self.state_topic)[:512], error=error[:64], message=message[:1000],
            payload=payload[:512],
        )
        await self.runtime.publish(self.topics.errors(self.site), report)

    async def read_number(self, value: ValueConfig, msg: RawIncoming, what: str) -> float | None:
        """The scaled number ``value`` finds in ``msg``; None, reported as ``device_payload``, when there is none."""
        try:
            return extract_number(msg.payload, value.field) * value.scale
        except ValueError as exc:
            await self.report("device_payload", f"{what}: {exc}", msg.topic, msg.payload.decode("utf-8", "replace"))
            return None

    # -- wiring ------------------------------------------------------------------------------------
    def attach(self) -> None:
        """Declare the setpoint route and the device's routes."""
        # first: a setpoint (a cut) is applied before the device's own news waiting in the inbox
        self.runtime.route(self.topics.setpoint(self.site, self.load), Setpoint, latest=True, first=True)(
            self._on_setpoint)
        self.routes()

    async def _on_setpoint(self, msg: Incoming[Setpoint]) -> None:
        setpoint: Setpoint | None = msg.payload
        assert setpoint is not None
        if setpoint.site != self.site or setpoint.load != self.load:
            raise ValueError(f"setpoint names {setpoint.site}/{setpoint.load}, not {self.site}/{self.load}")
        if self.clock.now() >= setpoint.valid_until:
            await self.report("stale", f"setpoint valid until {setpoint.valid_until.isoformat()} has expired",
                              msg.topic)
            setpoint = None  # the safe state, applied by the loop
        # Handlers never publish on the message path: the adapter's own loop applies it at once.
        self.setpoint = setpoint
        self._fallback_applied = False
        self._setpoint_changed = True
        self.wake()
        self.runtime.hurry()  # the loop applies it before the rest of the inbox

    async def _fall_back(self) -> None:
        if self._fallback_applied:
            return
        self._fallback_applied = True
        self.setpoint = None
        self.log.info("no valid setpoint: safe state")
        await self.apply(None)

    async def step(self) -> None:
        """One turn of the loop: a new setpoint, expiry, device work, availability and state."""
        if self._setpoint_changed:
            self._setpoint_changed = False
            if self.setpoint is None:
                await self._fall_back()
            elif not self.setpoint_expired:
                await self.apply(self.setpoint)
            # the other loads woken with this one (a site's cut is all its setpoints) send their commands
            # before this one goes on to its device work and state: the last load's cut does not wait for them
            await asyncio.sleep(0)
        if self.setpoint is not None and self.setpoint_expired:
            await self.report("setpoint_expired", f"setpoint expired at {self.setpoint.valid_until.isoformat()}; "
                              "falling back to the safe state")
            await self._fall_back()
        elif (self.setpoint is None and not self._fallback_applied
              and self.clock.monotonic() - self._started >= self.config.startup_grace):
            await self._fall_back()
        await self.tick()
        await self.publish_state()

    async def publish_state(self, force: bool = False) -> None:
        available = not self.silent
        if available != self._available and self.runtime.connected:
            ok = await self.runtime.publish(self.topics.load_availability(self.site, self.load),
                                            ONLINE if available else OFFLINE, retain=True)
            if ok:
                self._available = available
        now = self.clock.monotonic()
        inputs = self.state_inputs()
        fresh = now - self._last_state_at < self.config.state_interval
        if not force and fresh and inputs is not None and (available, inputs) == self._last_inputs:
            return
        try:
            state = self.build_state()
        except ValueError as exc:  # the device reports something the contract cannot hold
            await self.report("invalid_state", str(exc))
            return
        if not available:
            state = state.model_copy(update={"status": LoadStatus.UNAVAILABLE, "draw": {}, "power": None})
        # a running session's seconds alone are no news: renewed with the state every state_interval (a
        # thousand charging cars each republished every second for their clock only)
        comparable = state.model_dump(exclude={"ts": True, "details": {"session_seconds"}})
        if not force and comparable == self._last_state and fresh:
            self._last_inputs = (available, inputs)
            return
        state = state.model_copy(update={"ts": self.clock.now()})
        # QoS 0: the state is retained and superseded by the next one; waiting for a PUBACK here would hold
        # the adapter's loop (and the next command to the device) for a broker round trip or worse.
        if await self.runtime.publish(self.state_topic, state, retain=True, qos=0):
            self._last_state = comparable
            self._last_state_at = now
            self._last_inputs = (available, inputs)

    def stop(self) -> None:
        """Make :meth:`run` return (a cancellation alone can be swallowed by a racing ``wait_for``)."""
        self._stopping = True
        self.wake()

    async def run(self) -> None:
        """Serve this load until cancelled or stopped."""
        while not self._stopping:
            # cleared before the step: a wake that comes while the step awaits (a setpoint arriving during a
            # publish) makes the next step run at once instead of a tick later
            self._wake.clear()
            try:
                await self.step()
            except Exception:  # one load's bug must not stop the others
                self.log.exception("adapter step failed")
            await wait_for_event(self.clock, self._wake, self.quiet_for())
            if not self._wake.is_set() and not self._stopping:
                # a routine turn (nothing woke it) waits for spare time: a thousand loads' turns never hold
                # a setpoint in the inbox; a wake meanwhile lets it through at once
                self._ticket = self.runtime.spare_time.ticket(real_seconds(self.clock, self.config.tick))
                try:
                    await self._ticket
                finally:
                    self._ticket = None

    def start(self) -> None:
        """Start the startup grace now (the broker link is up)."""
        self._started = self.clock.monotonic()

    def reconnected(self) -> None:
        """The broker link came back: re-publish availability and state."""
        self._available = None
        self._last_state = None
        self._last_inputs = None
        self.wake()


__all__ = [
    "COMMAND_FAILURES",
    "SAFETY_REASONS",
    "SERVICE",
    "Backoff",
    "CommandCounts",
    "LoadAdapter",
    "LoadConfig",
    "NonNegativeSeconds",
    "PositiveSeconds",
    "RollingMean",
    "ValueConfig",
    "extract_number",
    "json_object",
]
