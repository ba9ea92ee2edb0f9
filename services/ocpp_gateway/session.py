"""One connected charger: the OCPP-J framing both versions share, and the way back to MQTT.

:class:`ChargerSession` extends the ``ocpp`` library's ``ChargePoint``: the version modules
(:mod:`.v16`, :mod:`.v201`) declare their ``@on(Action...)`` handlers (under :func:`reported`) on top of it,
and the library's route map sends each CALL to its handler. Here:

* every frame is checked before it is routed: a frame that is not OCPP-J gets a CALLERROR
  (``RpcFrameworkError`` / ``MessageTypeNotSupported`` in 2.0.1, ``FormationViolation`` / ``GenericError``
  in 1.6, message id ``-1`` when none can be read); a CALL for an action OCPP does not know gets
  ``NotImplemented``, one we do not handle ``NotSupported``, one breaking the schema the code the library
  maps the violation to, a failing handler ``PropertyConstraintViolation`` or ``InternalError``; each is
  reported on the errors topic (in moderation, see :class:`shared.moderation.Moderator`);
* commands from MQTT go out with :meth:`ChargerSession.request`: validated against the version's schema
  first, one outstanding CALL at a time (OCPP-J) with charging profiles served before other waiting
  commands (:class:`.call_queue.CallQueue`), each with its own timeout, failed at once when the charger
  goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import ocpp.messages  # type: ignore[import-untyped]
from ocpp.charge_point import (  # type: ignore[import-untyped]
    ChargePoint,
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import (  # type: ignore[import-untyped]
    InternalError,
    OCPPError,
    PropertyConstraintViolationError,
)
from ocpp.exceptions import NotImplementedError as NotImplementedCallError
from ocpp.exceptions import NotSupportedError as NotSupportedCallError
from ocpp.messages import (  # type: ignore[import-untyped]
    Call,
    CallError,
    CallResult,
    MessageType,
)
from pydantic import ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from shared import trace
from shared.clock import Clock, clock_timeout
from shared.cork import TurnCork
from shared.models import ChargerBoot, ChargerEvent, ConnectorMeter, ConnectorStatus, OcppVersion
from shared.moderation import Moderator
from shared.payload import PayloadError, parse_json
from shared.topics import Topics, slugify

from . import schemas
from .call_queue import URGENT_ACTIONS, CallQueue
from .config import GatewayConfig
from .handshake import Admission
from .meter import connector_meter
from .metrics import FROM_CHARGER, UNKNOWN_ACTION, OcppStats
from .outbox import Outbox

# The library validates each message against its JSON schema in a worker thread: about 0.1 ms of work
# behind a thread handoff costing three times that, twice per command (the CALL and its answer) on the
# path of every cut. Validated in the event loop instead, a cut reaches the charger that much sooner.
ocpp.messages.ASYNC_VALIDATION = False

log = logging.getLogger("ampmq.ocpp-gateway.session")
#: The ocpp library logs every frame at INFO; that is our DEBUG.
frames_log = logging.getLogger("ampmq.ocpp-gateway.frames")
frames_log.setLevel(logging.WARNING)

#: OCPP 1.6J spells two error codes differently (errata v1.0 section 5).
_V16_CODES = {"FormatViolation": "FormationViolation", "OccurenceConstraintViolation": "OccurrenceConstraintViolation"}
MAX_REMEMBERED_TRANSACTIONS = 64
#: At most this many error reports per charger per window; the rest are counted and summed up.
REPORTS_PER_CHARGER = 20
REPORT_WINDOW = 10.0
_MESSAGE_TYPES = {MessageType.Call: Call, MessageType.CallResult: CallResult, MessageType.CallError: CallError}
_UNSUPPORTED = "is not supported"


class ChargerOffline(Exception):
    """The charger is not connected (or went away while a command waited)."""


class CallErrorReceived(Exception):
    """The charger answered a command with a CALLERROR."""

    def __init__(self, code: str, description: str, details: Any) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class InvalidResponse(Exception):
    """The charger's answer to a command does not follow the schema."""

    def __init__(self, message: str, payload: Any) -> None:
        super().__init__(message)
        self.payload = payload


@dataclass(slots=True)
class ChargerMemory:
    """What the gateway remembers about a charger across its reconnects."""

    #: transaction id -> connector (a 1.6 StopTransaction names no connector).
    transactions: dict[str, int] = field(default_factory=dict)
    #: connector -> last status published (2.0.1 adds the charging state from TransactionEvent).
    status: dict[int, ConnectorStatus] = field(default_factory=dict)
    #: The last BootNotification, republished after the broker comes back.
    boot: ChargerBoot | None = None

    def remember_transaction(self, transaction_id: str, connector: int) -> None:
        self.transactions[transaction_id] = connector
        while len(self.transactions) > MAX_REMEMBERED_TRANSACTIONS:
            del self.transactions[next(iter(self.transactions))]


@dataclass(frozen=True, slots=True)
class GatewayContext:
    """What every session shares: config, topics, the outbox and the clock."""

    config: GatewayConfig
    topics: Topics
    outbox: Outbox
    clock: Clock
    #: OCPP calls and errors by action, for the metrics.
    stats: OcppStats = field(default_factory=OcppStats)
    #: Charger sockets whose frames wait for the end of the event loop's turn (:mod:`shared.cork`).
    corks: TurnCork = field(default_factory=TurnCork)
    #: 1.6 transaction ids (integers the central system hands out), rising across restarts.
    transaction_ids: Iterator[int] = field(default_factory=lambda: itertools.count(int(time.time()) % 1_000_000_000))


def ocpp_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as OCPP expects: ``2026-12-01T01:02:03.456Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def reported(handler: Handler) -> Handler:
    """Put under ``@on(...)``: a handler that fails is reported on the errors topic and answered with a
    CALLERROR naming why (a value out of range is a PropertyConstraintViolation, a bug an InternalError)."""

    @functools.wraps(handler)
    async def guarded(self: ChargerSession, **kwargs: Any) -> Any:
        try:
            return await handler(self, **kwargs)
        except OCPPError as exc:
            self.report("call_rejected", f"{handler.__name__}: {exc.code}: {exc.description}")
            raise
        except ValidationError as exc:
            self.report("invalid_value", f"{handler.__name__}: {_describe(exc)}", json.dumps(self.current_payload))
            raise PropertyConstraintViolationError(details={"cause": _describe(exc)}) from exc
        except Exception as exc:
            log.exception("%s of %s failed", handler.__name__, self.admission.ocpp_id)
            self.report("handler_error", f"{handler.__name__}: {type(exc).__name__}: {exc}")
            raise InternalError(details={"cause": "the central system failed to handle this message"}) from exc

    return guarded  # type: ignore[return-value]


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)[:5])


class ChargerSession(ChargePoint):  # type: ignore[misc]
    """A charger on its websocket; subclasses add the version's ``@on`` handlers."""

    version: ClassVar[OcppVersion]
    #: Every action of the version, either direction.
    known_actions: ClassVar[frozenset[str]]
    _ocpp_version: str

    def __init__(self, admission: Admission, connection: ServerConnection, ctx: GatewayContext,
                 memory: ChargerMemory) -> None:
        super().__init__(admission.ocpp_id, connection, response_timeout=ctx.config.call_timeout,
                         logger=frames_log)
        self.admission = admission
        self.site = admission.site
        self.charger = admission.charger
        self.ctx = ctx
        self.memory = memory
        self.connection = connection
        self.closed = False
        #: Commands from MQTT waiting for this charger or in flight: charging profiles, everything else.
        self.waiting_profiles = 0
        self.waiting_commands = 0
        self.calls = CallQueue()
        self._pending: dict[str, asyncio.Future[CallResult | CallError]] = {}
        #: The camelCase payload of the CALL being handled (the library hands handlers snake_case).
        self.current_payload: Mapping[str, Any] = {}
        self._moderator = Moderator(ctx.clock, REPORTS_PER_CHARGER, REPORT_WINDOW)

    # -- the reading loop ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Read and route frames until the websocket closes (``ConnectionClosed`` ends it)."""
        async for frame in self.connection:
            await self.route_message(frame)

    async def route_message(self, raw_msg: str | bytes) -> None:
        if isinstance(raw_msg, bytes):
            await self._frame_error(None, "binary frame (OCPP-J uses text frames)", raw_msg)
            return
        frame, problem, unique_id, answer = parse_frame(raw_msg)
        if problem is not None:
            if answer:
                await self._frame_error(unique_id, problem, raw_msg, unknown_type=problem.endswith(_UNSUPPORTED))
            else:  # a broken CALLRESULT/CALLERROR is never answered with a CALLERROR
                self.report("malformed_frame", problem, raw_msg)
            return
        msg = _MESSAGE_TYPES[frame[0]](*frame[1:])
        if msg.message_type_id == MessageType.Call:
            self.current_payload = msg.payload
            action = msg.action if msg.action in self.known_actions else UNKNOWN_ACTION
            self.ctx.stats.call(FROM_CHARGER, action)
            try:
                await self._handle_call(msg)
            except OCPPError as error:
                self.ctx.stats.error(FROM_CHARGER, action, error.code)
                self.report("call_rejected", f"{msg.action}: {error.code}: {error.description} {error.details}",
                            raw_msg)
                await self._send_error(msg.unique_id, error.code, error.description, error.details or {})
            finally:
                self.current_payload = {}
            return
        future = self._pending.pop(msg.unique_id, None)
        if future is None or future.done():
            self.report("unexpected_response", f"answer to no outstanding call (id {msg.unique_id!r})", raw_msg)
            return
        future.set_result(msg)

    async def _handle_call(self, msg: Call) -> None:
        """Route a CALL to its ``@on`` handler: the library's routing, schemas and key conversion, made lean.

        Differences from ``ChargePoint._handle_call``: NotImplemented and NotSupported as OCPP-J defines
        them (the library swaps the two), the schema is checked in the event loop with the
        same schema files compiled (:mod:`.schemas`; a thread hop per message costs more than the check),
        camelCase keys are converted once per distinct key (the library runs two regexes per key per
        message), and a failing handler raises its OCPPError here (see :func:`reported`) so
        :meth:`route_message` answers and reports it in one place.
        """
        handlers = self.route_map.get(msg.action)
        if handlers is None or "_on_action" not in handlers:
            # OCPP-J: NotImplemented = "not known by receiver", NotSupported = "recognized but not supported".
            # (The ocpp library answers the other way round.)
            if msg.action in self.known_actions:
                raise NotSupportedCallError(description="Requested Action is recognized but not supported by the "
                                             "receiver", details={"cause": f"{msg.action} is not handled here"})
            raise NotImplementedCallError(description="Requested Action is not known by receiver",
                                           details={"cause": f"{msg.action} is not an OCPP {self.version} action"})
        validate = not handlers.get("_skip_schema_validation", False)
        if validate:
            schemas.check(self._ocpp_version, msg.action, MessageType.Call, msg.payload)
        response = await handlers["_on_action"](**to_snake_case(msg.payload))
        payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
        result = msg.create_call_result(payload)
        if validate:
            schemas.check(self._ocpp_version, msg.action, MessageType.CallResult, result.payload)
        await self._send(result.to_json())

    async def _frame_error(self, unique_id: str | None, problem: str, raw: str | bytes,
                           *, unknown_type: bool = False) -> None:
        self.report("malformed_frame", problem, raw)
        if self.version == OcppVersion.V16:
            code = "GenericError" if unknown_type else "FormationViolation"
        else:
            code = "MessageTypeNotSupported" if unknown_type else "RpcFrameworkError"
        await self._send_error(unique_id or "-1", code, problem[:200], {})

    async def _send_error(self, unique_id: str, code: str, description: str, details: Any) -> None:
        if self.version == OcppVersion.V16:
            code = _V16_CODES.get(code, code)
        if not isinstance(details, dict):
            details = {"cause": str(details)}
        details = {k: v for k, v in details.items() if k != "ocpp_message"}  # never echo the whole frame
        frame = CallError(unique_id, code, description, _jsonable(details)).to_json()
        with contextlib.suppress(ConnectionClosed):
            await self._send(frame)

    # -- commands to the charger --------------------------------------------------------------------
    async def request(self, action: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one CALL and return the charger's answer.

        Raises ``OCPPError`` (schema violation, before anything is sent), ``ChargerOffline``,
        ``TimeoutError``, :class:`CallErrorReceived` or :class:`InvalidResponse`.
        """
        unique_id = str(uuid.uuid4())
        schemas.check(self._ocpp_version, action, MessageType.Call, payload)
        loop = asyncio.get_running_loop()
        # the queue: one outstanding CALL per charger (OCPP-J), charging profiles ahead of every other waiting
        # command; the wait in it is bounded by the timeouts of the CALLs ahead. The timeout counts from the
        # CALL on, on the gateway's clock (a simulated day's adapter sets it on the same one): a profile that
        # waited for a hung command still gets its full time to be answered.
        async with self.calls.turn(urgent=action in URGENT_ACTIONS):
            if self.closed:
                raise ChargerOffline(f"charger {self.charger} is offline")
            future: asyncio.Future[CallResult | CallError] = loop.create_future()
            self._pending[unique_id] = future
            try:
                async with clock_timeout(self.ctx.clock, timeout):
                    # the frames of one cut (a site's chargers, woken by one turn of the inbox) leave together
                    self.ctx.corks.hold(self.connection.transport.get_extra_info("socket"))
                    await self._send(Call(unique_id, action, payload).to_json())
                    trace.note("frame", self.charger)
                    answer = await future
            except ConnectionClosed as exc:
                raise ChargerOffline(f"charger {self.charger} went away") from exc
            finally:
                self._pending.pop(unique_id, None)
        if isinstance(answer, CallError):
            raise CallErrorReceived(str(answer.error_code), str(answer.error_description), answer.error_details)
        if not isinstance(answer.payload, dict):
            raise InvalidResponse("the answer is not a JSON object", answer.payload)
        try:
            schemas.check(self._ocpp_version, action, MessageType.CallResult, answer.payload)
        except OCPPError as exc:
            raise InvalidResponse(f"{exc.code}: {exc.details or exc.description}", answer.payload) from exc
        return answer.payload

    def close(self) -> None:
        """The websocket is gone: fail every command still waiting for an answer."""
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChargerOffline(f"charger {self.charger} went away"))
        self._pending.clear()

    # -- towards MQTT -------------------------------------------------------------------------------
    @property
    def topics(self) -> Topics:
        return self.ctx.topics

    def now(self) -> datetime:
        return self.ctx.clock.now()

    async def publish(self, topic: str, model: Any, *, retain: bool = True, qos: int = 1) -> None:
        await self.ctx.outbox.put(topic, model, retain=retain, qos=qos)

    def report(self, error: str, message: str, payload: str | bytes = b"") -> None:
        """Report trouble with this charger, at most ``REPORTS_PER_CHARGER`` per ``REPORT_WINDOW`` seconds
        (a charger sending garbage in a loop must not crowd out everyone else's state); the rest are
        counted and summed up once."""
        allowed, held_back = self._moderator.allow()
        topic = self.topics.charger_availability(self.site, self.charger)
        if held_back:
            self.ctx.outbox.report(self.site, "reports_suppressed", f"charger {self.admission.ocpp_id}: "
                                   f"{self._moderator.summary(held_back, 'problems')}", topic=topic)
        if allowed:
            self.ctx.outbox.report(self.site, error, f"charger {self.admission.ocpp_id}: {message}", payload,
                                   topic=topic)
        else:
            log.info("charger %s (not reported: too many): %s: %s", self.admission.ocpp_id, error, message)

    async def event(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        """Publish a ChargerEvent (not retained) named after the OCPP action, e.g. ``firmware-status-notification``."""
        slug = slugify(_kebab(name))
        payload = _jsonable(dict(data if data is not None else self.current_payload))
        await self.publish(self.topics.charger_event(self.site, self.charger, slug),
                           ChargerEvent(site=self.site, charger=self.charger, name=name, data=payload, ts=self.now()),
                           retain=False)

    async def publish_meter(self, connector: int, meter_value: Any, transaction_id: str | None = None
                            ) -> ConnectorMeter | None:
        meter, problems = connector_meter(self.site, self.charger, connector, meter_value or [], self.now(),
                                          transaction_id)
        for problem in problems:
            self.report("meter_value", f"connector {connector}: {problem}")
        if meter is not None:
            # QoS 0: meter values are the busiest state and renew themselves; QoS 1 holds each publish
            # in flight until the broker acknowledges it, and a busy gateway then publishes them late.
            await self.publish(self.topics.connector_meter(self.site, self.charger, connector), meter, qos=0)
        return meter

    async def publish_boot(self, boot: ChargerBoot) -> None:
        self.memory.boot = boot
        await self.publish(self.topics.charger_boot(self.site, self.charger), boot)

    async def publish_status(self, status: ConnectorStatus) -> None:
        self.memory.status[status.connector] = status
        await self.publish(self.topics.connector_status(self.site, self.charger, status.connector), status)

    def id_tag_status(self, id_tag: str | None) -> str:
        """Authorize policy: ``Accepted`` or ``Invalid``."""
        config = self.ctx.config
        if config.authorize == "accept_all" or (id_tag is not None and id_tag in config.id_tags):
            return "Accepted"
        return "Invalid"


@functools.lru_cache(maxsize=4096)
def _snake_key(key: str) -> str:
    """The ocpp library's camelCase → snake_case for one key, remembered."""
    converted: dict[str, None] = camel_to_snake_case({key: None})
    return next(iter(converted))


def to_snake_case(data: Any) -> Any:
    """``ocpp.charge_point.camel_to_snake_case`` with each distinct key converted only once."""
    if isinstance(data, dict):
        return {_snake_key(k): to_snake_case(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_snake_case(v) for v in data]
    return data


def _kebab(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy (Decimals become floats, anything else its text)."""
    return json.loads(json.dumps(value, default=lambda o: float(o) if isinstance(o, Decimal) else str(o)))


def parse_frame(raw: str) -> tuple[list[Any], str | None, str | None, bool]:
    """Parse an OCPP-J frame: the frame, what is wrong with it at the RPC level (None if nothing), its
    message id when readable, and whether a problem is answered with a CALLERROR (not when the frame is a
    broken CALLRESULT or CALLERROR)."""
    try:
        frame = parse_json(raw)
    except PayloadError as exc:
        return [], f"not usable JSON: {exc}", None, True
    problem, unique_id, answer = _frame_problem(frame)
    return frame, problem, unique_id, answer


def _frame_problem(frame: Any) -> tuple[str | None, str | None, bool]:
    if not isinstance(frame, list) or not frame:
        return "an OCPP-J message is a JSON array", None, True
    message_type = frame[0]
    unique_id = frame[1] if len(frame) > 1 and isinstance(frame[1], str) else None
    if isinstance(message_type, bool) or not isinstance(message_type, int):
        return "message type id must be a number", unique_id, True
    if message_type not in (MessageType.Call, MessageType.CallResult, MessageType.CallError):
        return f"message type {message_type} {_UNSUPPORTED}", unique_id, True
    answer = message_type == MessageType.Call
    if unique_id is None:
        return "message id must be a string", None, answer
    if len(unique_id) > 36:
        return "message id is longer than 36 characters", unique_id, answer
    expected = {MessageType.Call: 4, MessageType.CallResult: 3, MessageType.CallError: 5}[message_type]
    if len(frame) != expected:
        return f"message type {message_type} has {expected} elements, not {len(frame)}", unique_id, answer
    if message_type == MessageType.Call:
        if not isinstance(frame[2], str):
            return "action must be a string", unique_id, True
        if not isinstance(frame[3], dict):
            return "payload must be a JSON object", unique_id, True
    return None, unique_id, answer
