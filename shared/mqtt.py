"""The service runtime: one MQTT connection per service, typed routes, availability, error reports.

A service declares its routes next to their handlers::

    runtime = Runtime("allocator", config)

    @runtime.route(runtime.topics.measurement_filter(), SiteMeasurement)
    async def on_measurement(msg: Incoming[SiteMeasurement]) -> None: ...

    await runtime.run()   # connects, publishes ``online``, reconnects with backoff, forever

``online`` is announced only once the broker has acknowledged every subscription (SUBACK): a peer that
sees a service's ``online`` may count on that service receiving what it publishes next (the load adapters
re-send their pending commands to the gateway on each ``online`` of it). A lost connection is retried
after :func:`reconnect_delay`: 0.25 s doubling to a 2 s cap, jittered, so a service is back within about
2 s of the broker's return however long the outage, and a fleet does not reconnect in step.

Every payload is validated by its model before a handler sees it. A payload that fails is not applied:
the runtime publishes an :class:`ErrorReport` on the site's errors topic, logs it, and goes on.

Messages go from the socket straight into the runtime's :class:`~shared.inbox.Inbox` — everything the socket
holds at once (:mod:`shared.read_ahead`) — and are handled one at a time, in order; a route declared
``first=True`` (a setpoint to apply) goes before the rest. Work no message waits on asks for spare time
(:attr:`Runtime.spare_time`, :mod:`shared.spare_time`) and runs when the inbox is empty. A route declared
``latest=True`` carries a state (a reading, a load's state, a setpoint): while the handlers are behind, a
newer message on its topic replaces the waiting one, so a service that falls behind acts on the latest state
instead of working through a backlog. Routes look up in a :class:`~shared.filters.FilterTable`, whatever their
number. :meth:`Runtime.publish` writes the message to the socket and returns (:mod:`shared.write_through`):
no handler ever waits for the broker's acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as mqtt
from pydantic import BaseModel, ValidationError

from . import trace
from .availability import OFFLINE as OFFLINE
from .availability import ONLINE as ONLINE
from .availability import InstanceAvailability, instance_id
from .cork import TurnCork
from .filters import FilterTable
from .inbox import Inbox
from .metrics import service_registry
from .models import ErrorReport
from .own_output import OwnOutput
from .payload import PayloadError, check_bounds, transaction_of
from .read_ahead import ReadAhead
from .secrets import redact
from .spare_time import SpareTime
from .topics import SERVICES_SEGMENT, TopicError, TopicRef, Topics
from .write_through import WriteThrough

log = logging.getLogger("ampmq.mqtt")

M = TypeVar("M", bound=BaseModel)


class BrokerUrlError(ValueError):
    """The broker URL cannot be used."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is, parsed from ``mqtt://user:password@host:port`` or ``mqtts://...``.

    A password in a URL must be percent-encoded (``@`` as ``%40``, ``/`` as ``%2F``, ``#`` as ``%23``); the
    config's ``mqtt_username``/``mqtt_password`` take any character as it is. TLS trusts the system's CAs
    unless ``ca_file`` names the CA to trust; ``cert_file``/``key_file`` are a client certificate."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise BrokerUrlError(f"broker URL {redact(url)!r}: scheme must be mqtt:// or mqtts://")
        try:
            host = parts.hostname
            port = parts.port
        except ValueError as exc:
            raise BrokerUrlError(f"broker URL {redact(url)!r}: {exc} (percent-encode a password's @ / # : as "
                                 "%40 %2F %23 %3A, or set mqtt_username/mqtt_password instead)") from exc
        if not host:
            raise BrokerUrlError(f"broker URL {redact(url)!r} names no host")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=host,
            port=port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for this address (None without TLS); a file that cannot be used raises
        :class:`BrokerUrlError` naming it."""
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUrlError(f"mqtt_tls.ca_file {str(self.ca_file)!r} is not a usable CA certificate: "
                                 f"{exc}") from exc
        if self.cert_file is not None:
            try:
                context.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise BrokerUrlError(f"mqtt_tls.cert_file {str(self.cert_file)!r} with key_file "
                                     f"{str(self.key_file)!r} is not a usable certificate and key: {exc}") from exc
        return context

    def client(self, identifier: str, will: aiomqtt.Will | None = None, **kwargs: Any) -> aiomqtt.Client:
        """An aiomqtt client for this address (not yet connected)."""
        # Small messages go out at once: without TCP_NODELAY a publish right after another one (or a PUBACK)
        # waits for the broker's delayed ACK, about 40 ms on Linux.
        kwargs.setdefault("socket_options", ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),))
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            will=will,
            tls_context=self.tls_context(),
            **kwargs,
        )


@dataclass(frozen=True, slots=True)
class Incoming(Generic[M]):
    """A validated message handed to a route's handler."""

    topic: str
    ref: TopicRef | None
    payload: M
    retain: bool


@dataclass(frozen=True, slots=True)
class RawIncoming:
    """A message for a route that takes raw bytes (a device's own protocol)."""

    topic: str
    payload: bytes
    retain: bool


Handler = Callable[[Incoming[Any]], Awaitable[None]]
RawHandler = Callable[[RawIncoming], Awaitable[None]]


@dataclass(slots=True)
class _Route:
    filter: str
    model: type[BaseModel] | None
    handler: Callable[[Any], Awaitable[None]]
    qos: int = 1
    latest: bool = False
    first: bool = False
    own: bool = False


class _TopicKind(NamedTuple):
    """How the routes take a topic's messages: a state (every route takes only the latest), first (a route
    asks for it), this service's own output read back (:mod:`shared.own_output`)."""

    state: bool
    first: bool
    own: bool


@dataclass(slots=True)
class RuntimeStats:
    """What the runtime counts as it goes (plain integers: nothing on the message path locks), read by
    :class:`shared.metrics.RuntimeCollector` when scraped."""

    #: Messages handed to the routes, and those refused (a payload failing its model, a handler's ValueError).
    received: int = 0
    rejected: int = 0
    #: Publications handed to the connection, and those dropped (not connected, or refused by the client).
    published: int = 0
    dropped: int = 0
    handler_errors: int = 0
    #: Sessions established (subscriptions acknowledged): the first connection and every reconnect.
    connects: int = 0
    #: Error code -> error reports published with it.
    error_reports: dict[str, int] = field(default_factory=dict)


_instances = itertools.count(1)
_SUBSCRIBE_BATCH = 200
#: QoS 1 publications awaiting their PUBACK (paho's default of 20 throttled 500 sites' setpoints).
_MAX_INFLIGHT = 1000


#: The longest the inbox handles messages before it lets other ready tasks run (see Runtime._handle_inbox).
INBOX_SLICE = 0.002
#: The longest the inbox reads, before the tasks a hurried message woke run, for what came in meanwhile (s).
HURRY_READ = 0.0003

#: Reconnect pacing: the first retry after this long, doubling up to ``RECONNECT_CAP`` (see reconnect_delay).
RECONNECT_INITIAL = 0.25
RECONNECT_CAP = 2.0


def reconnect_delay(attempt: int, initial: float = RECONNECT_INITIAL, cap: float = RECONNECT_CAP,
                    spread: float = 1.0) -> float:
    """The pause before reconnect attempt ``attempt`` (0 for the first retry after a loss).

    ``initial`` doubling per attempt up to ``cap``; then "equal jitter": the pause is between half of that
    and all of it, placed by ``spread`` (0..1, drawn at random by the caller), so chargers' services that
    lost the same broker do not all knock at once, and no pause is ever above ``cap``. With the defaults a
    service tries again at most 2 s after the broker is back, however long it was gone (a 30 s cap once
    meant up to 30 s of lost commands after a long outage)."""
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    base = min(cap, initial * 2.0 ** min(attempt, 30))
    return base / 2 + base / 2 * min(1.0, max(0.0, spread))


def client_identifier(service: str) -> str:
    """A client id unique per runtime, so a standby instance never kicks the active one off (not even a
    second instance of the same service in one process: tests, partitioned allocators)."""
    return f"ampmq-{service}-{socket.gethostname()[:20]}-{os.getpid()}-{next(_instances)}"


class _NoFilteredCallbacks:
    """Stands in for paho's table of per-filter callbacks, which nothing here fills (aiomqtt neither).

    paho looks every incoming message up in it, and its matcher builds a closure that refers to itself for
    each lookup: six objects of cyclic garbage per message, left to the cyclic collector (24 000 objects in
    5 s in the allocator at 1 000 chargers, most of its young collections' work)."""

    def iter_match(self, topic: str) -> tuple[()]:
        return ()


_NO_FILTERED_CALLBACKS = _NoFilteredCallbacks()


# -- the boundary with aiomqtt and paho ---------------------------------------------------------------
# Four things the runtime uses are not aiomqtt's public API: the paho client aiomqtt keeps at
# ``Client._client`` (publish without waiting for the PUBACK, write now; paho's ``_sock_recv``, read ahead),
# aiomqtt's ``_disconnected`` future (a reader that fails ends the session, as aiomqtt's own reader does), and
# paho's ``_on_message_filtered`` table (bypassed, see above). The pins in pyproject.toml (aiomqtt 2.5.x,
# paho-mqtt 2.1-2.2) are the versions this was checked against, and tests/foundation/test_runtime.py's
# boundary tests fail if a release moves them: a missing paho client is an error that says so, never messages
# silently swallowed.


class MqttBoundaryError(RuntimeError):
    """aiomqtt or paho no longer look the way this runtime was written against."""


def paho_of(client: aiomqtt.Client) -> mqtt.Client:
    """The paho client inside an aiomqtt client, or :class:`MqttBoundaryError` naming the versions to use."""
    paho = getattr(client, "_client", None)
    if not isinstance(paho, mqtt.Client):
        raise MqttBoundaryError("this aiomqtt keeps no paho client at Client._client: ampmq's MQTT runtime is "
                                "written for aiomqtt 2.5.x with paho-mqtt 2.1-2.2 (see pyproject.toml)")
    return paho


def _ending_session(client: aiomqtt.Client) -> Callable[[BaseException], None]:
    """What aiomqtt's own reader does when reading fails: the session ends with that error."""
    disconnected = getattr(client, "_disconnected", None)
    if not isinstance(disconnected, asyncio.Future):
        raise MqttBoundaryError("this aiomqtt keeps no _disconnected future: ampmq's MQTT runtime is written for "
                                "aiomqtt 2.5.x with paho-mqtt 2.1-2.2 (see pyproject.toml)")

    def end(exc: BaseException) -> None:
        if not disconnected.done():
            disconnected.set_exception(exc)

    return end


def _skip_filtered_callbacks(paho: mqtt.Client) -> bool:
    """Bypass paho's per-filter callback matcher where it is the table this was written against; True if
    bypassed. Elsewhere paho keeps its own (correct, only slower: it makes cyclic garbage per message)."""
    table = getattr(paho, "_on_message_filtered", None)
    if table is None or not hasattr(table, "iter_match"):
        logging.getLogger("ampmq.mqtt").warning("paho has no _on_message_filtered matcher: not bypassed")
        return False
    paho._on_message_filtered = _NO_FILTERED_CALLBACKS  # type: ignore[assignment]
    return True


class Runtime:
    """One service's MQTT connection with typed routes, Last Will availability and reconnect."""

    def __init__(
        self,
        service: str,
        broker: BrokerAddress | str,
        topics: Topics | None = None,
        *,
        availability_topic: str | None = None,
        backoff_initial: float = RECONNECT_INITIAL,
        backoff_max: float = RECONNECT_CAP,
        max_queued: int = 10_000,
    ) -> None:
        self.service = service
        self.broker = BrokerAddress.parse(broker) if isinstance(broker, str) else broker
        self.topics = topics or Topics()
        self.availability_topic = availability_topic or self.topics.service_availability(service)
        self.stats = RuntimeStats()
        #: This service's Prometheus registry (:mod:`shared.metrics`); a service registers its collectors here.
        self.metrics = service_registry(self)
        self._routes: FilterTable[_Route] = FilterTable()
        #: The QoS each filter is subscribed at: the highest its routes ask for.
        self._subscriptions: dict[str, int] = {}
        #: Received and not yet handled; and for each topic seen, whether it is a state and goes first (_kind_of).
        self.inbox: Inbox[RawIncoming] = Inbox(max_queued)
        #: Work that waits until the inbox is empty (shared/spare_time.py).
        self.spare_time = SpareTime(lambda: bool(self.inbox))
        self.inbox.emptied = self.spare_time.idle
        self._topic_kinds: dict[str, _TopicKind] = {}
        #: What this service last published on the topics it reads back (a route with ``own``): their echoes
        #: are dropped unparsed.
        self.own_output = OwnOutput()
        self._reads_own_output = False
        self._on_connect: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._client: aiomqtt.Client | None = None
        self._writer: WriteThrough | None = None
        #: The reader of the current connection (None while there is none): how it reads, counted.
        self.reader: ReadAhead | None = None
        self._hurry = False
        #: The sockets (its own, a charger's) whose writes the tasks a hurried message woke hold to the end of
        #: their turn (:mod:`shared.cork`); the inbox releases them right behind those tasks.
        self.corks = TurnCork()
        #: The sites this instance serves (None: all); see :meth:`serve_only`.
        self._sites: frozenset[str] | None = None
        self._site_prefix = f"{self.topics.root}/"
        #: Messages for other instances' sites, dropped before parsing.
        self.foreign = 0
        self._connected = asyncio.Event()
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._jitter = random.Random()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.log = logging.getLogger(f"ampmq.{service}")
        self.identifier = client_identifier(service)
        #: This instance's part in the service's availability (several instances may run: see the module).
        topics = self.topics
        self.availability = InstanceAvailability(
            self.availability_topic, topics.service_instance(service, instance_id(self.identifier)),
            topics.service_instances_filter(service), topics.service_roll_call(service), self._publish_retained,
            self._publish_call, time.monotonic, self.log)
        self._declare_availability_routes()

    # -- declaring ---------------------------------------------------------------------------------
    def _declare_availability_routes(self) -> None:
        availability = self.availability

        async def on_service(msg: RawIncoming) -> None:
            await availability.on_service(msg.payload, msg.retain)

        async def on_instance(msg: RawIncoming) -> None:
            availability.on_instance(msg.topic, msg.payload)

        async def on_roll_call(msg: RawIncoming) -> None:
            await availability.on_roll_call()

        self.raw_route(self.availability_topic, latest=True)(on_service)
        self.raw_route(availability.instances_filter, latest=True)(on_instance)
        self.raw_route(availability.roll_call_topic)(on_roll_call)

    async def _publish_retained(self, topic: str, payload: str) -> bool:
        return await self.publish(topic, payload, retain=True)

    async def _publish_call(self, topic: str, payload: str) -> bool:
        return await self.publish(topic, payload)

    def route(
        self, topic_filter: str, model: type[M], *, qos: int = 1, latest: bool = False, first: bool = False,
        own: bool = False,
    ) -> Callable[[Callable[[Incoming[M]], Awaitable[None]]], Any]:
        """Declare a handler for messages on ``topic_filter`` validated by ``model`` (subscribed at ``qos``:
        0 saves an acknowledgement per message where a loss on a broken connection does not matter).
        ``latest``: the topic carries a state, so while the handlers are behind, a newer message replaces
        one still waiting for the same topic (see :mod:`shared.inbox`); commands and events keep the default.
        ``first``: handled before whatever else waits (a setpoint to apply: the reaction waits on it).
        ``own``: the topics carry this service's own output, read back; the echo of what it last published
        on one is dropped before it is parsed, for every route (:mod:`shared.own_output`)."""

        def register(handler: Callable[[Incoming[M]], Awaitable[None]]) -> Callable[[Incoming[M]], Awaitable[None]]:
            self._add(_Route(topic_filter, model, handler, qos, latest, first, own))
            self._reads_own_output |= own
            if self._client is not None and self._connected.is_set():
                self.spawn(self._client.subscribe(topic_filter, qos=qos))
            return handler

        return register

    def raw_route(self, topic_filter: str, *, qos: int = 1, latest: bool = False) -> Callable[[RawHandler], RawHandler]:
        """Declare a handler that takes the raw payload (a device protocol parsed by the handler)."""

        def register(handler: RawHandler) -> RawHandler:
            self._add(_Route(topic_filter, None, handler, qos, latest, False))
            if self._client is not None and self._connected.is_set():
                self.spawn(self._client.subscribe(topic_filter, qos=qos))
            return handler

        return register

    def _add(self, route: _Route) -> None:
        self._routes.add(route.filter, route)
        self._topic_kinds.clear()
        self._subscriptions[route.filter] = max(route.qos, self._subscriptions.get(route.filter, 0))

    def on_connect(
        self, hook: Callable[[], Coroutine[Any, Any, None]]
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """Run ``hook`` after every (re)connect, once subscriptions are in place."""
        self._on_connect.append(hook)
        return hook

    def serve_only(self, sites: list[str] | None) -> None:
        """Partitioning: messages under the root for any other site are dropped as they arrive, before the inbox
        and any parsing. An instance of a service partitioned over several subscribes to what all of them do
        (``+`` for the site); at 10 000 chargers on two allocators, parsing the other partition's readings and
        states to drop them cost each a third of a core. Service topics (``services``) always pass."""
        self._sites = None if sites is None else frozenset(sites)

    # -- state -------------------------------------------------------------------------------------
    @property
    def filters(self) -> frozenset[str]:
        """The topic filters the routes subscribe to."""
        return frozenset(self._subscriptions)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    # -- publishing --------------------------------------------------------------------------------
    async def publish(
        self, topic: str, payload: BaseModel | str | bytes | None, *, retain: bool = False, qos: int = 1
    ) -> bool:
        """Publish; a model is serialized as JSON. Returns False (and counts a drop) while offline.

        The message is handed to the connection and this returns at once: a QoS 1 acknowledgement is the
        connection's business (it keeps up to ``_MAX_INFLIGHT`` unacknowledged, in order), never the
        caller's. Waiting for PUBACKs in a handler held every message behind it — an overload reading
        included — for as long as the broker took to answer, seconds on a saturated machine."""
        data: str | bytes
        if type(payload) is ErrorReport:  # every report is counted by its code, delivered or not
            reports = self.stats.error_reports
            reports[payload.error] = reports.get(payload.error, 0) + 1
        if payload is None:
            data = b""
        elif isinstance(payload, BaseModel):
            data = payload.model_dump_json(exclude_none=False)
        else:
            data = payload
        # Connected is enough: a retained message that came with the first subscriptions is handled (and may
        # publish) while the rest are still being made.
        writer = self._writer
        if self._client is None or writer is None:
            self.stats.dropped += 1
            self.log.warning("not connected: dropped publish to %s", topic)
            return False
        # aiomqtt's publish awaits the acknowledgement; its paho client takes the message without waiting,
        # and the writer puts it on the socket now
        info = writer.publish(topic, data, qos, retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.stats.dropped += 1
            self.log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
            return False
        self.stats.published += 1
        if self._reads_own_output and self._kind_of(topic).own:
            self.own_output.published(topic, data)
        trace.note("out", topic)
        return True

    def together(self) -> contextlib.AbstractContextManager[None]:
        """Publications made inside go to the broker in one push when the block ends
        (:meth:`WriteThrough.together`); nothing inside may wait (:meth:`publish` never does)."""
        writer = self._writer
        return writer.together() if writer is not None else contextlib.nullcontext()

    async def report_error(
        self, topic: str, error: str, message: str, payload: bytes | str = b"", *, site: str | None = None,
        transaction: str | None = None,
    ) -> None:
        """Log a rejected input and publish an :class:`ErrorReport` on the errors topic it belongs to:
        ``site``'s when given (a device topic outside the tree), else the site the topic names, else the
        service's own. The report echoes ``transaction``, else the one a JSON-object payload carries."""
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        report = ErrorReport(service=self.service, topic=topic[:512], error=error, message=message[:1000],
                             payload=text[:512], transaction=transaction or transaction_of(text))
        self.log.warning("rejected %s: %s: %s", topic, error, message)
        await self.publish(self.topics.errors(site) if site else self.errors_topic_for(topic), report)

    def errors_topic_for(self, topic: str) -> str:
        try:
            site = self.topics.parse(topic).site
        except TopicError:
            site = None
        return self.topics.errors(site) if site else self.topics.service_errors(self.service)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; its failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stats.handler_errors += 1
            self.log.error("background task failed", exc_info=task.exception())

    # -- running -----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect and serve forever; reconnect with exponential backoff, restoring subscriptions."""
        dispatcher = asyncio.get_running_loop().create_task(self._handle_inbox(), name=f"{self.service}-inbox")
        try:
            await self._connect_forever()
        finally:
            dispatcher.cancel()

    async def _connect_forever(self) -> None:
        attempt = 0
        will = aiomqtt.Will(self.availability_topic, OFFLINE, qos=1, retain=True)
        while True:
            connects_before = self.stats.connects
            try:
                async with self.broker.client(
                    self.identifier, will=will, queue_type=_queue_into(self._receive),
                    max_inflight_messages=_MAX_INFLIGHT, logger=logging.getLogger(f"ampmq.{self.service}.mqtt"),
                ) as client:
                    paho, loop = paho_of(client), asyncio.get_running_loop()
                    _skip_filtered_callbacks(paho)
                    self._writer = WriteThrough(paho, loop)
                    self.reader = ReadAhead(paho, loop, _ending_session(client))
                    # aiomqtt warns past 10 publications awaiting their PUBACK; 1 000 in flight are by design
                    client.pending_calls_threshold = _MAX_INFLIGHT
                    self._client = client
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # The disconnect on the way out of a cancelled session failed: still a stop, not a loss.
                    raise asyncio.CancelledError from exc
                self.log.warning("broker %s: %s; reconnecting", self.broker.url, exc)
            finally:
                self._connected.clear()
                self._client = None
                self._writer = None
                self.reader = None
            if self.stats.connects > connects_before:
                attempt = 0  # the last attempt got through: start the backoff anew
            delay = reconnect_delay(attempt, self._backoff_initial, self._backoff_max, self._jitter.random())
            self.log.info("reconnecting to %s in %.2fs", self.broker.url, delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def _session(self, client: aiomqtt.Client) -> None:
        subscriptions = list(self._subscriptions.items())
        for start in range(0, len(subscriptions), _SUBSCRIBE_BATCH):  # a thousand loads: a few packets, not 7 000
            # aiomqtt returns once the broker's SUBACK is in: ``online`` below promises we are listening
            granted = await client.subscribe(subscriptions[start:start + _SUBSCRIBE_BATCH])
            _check_granted(self.log, subscriptions[start:start + _SUBSCRIBE_BATCH], granted)
        self._connected.set()
        self.stats.connects += 1
        # Not aiomqtt's publish: it waits up to its timeout for the PUBACK even when the connection dies
        # first, and a broker restarted at that moment held the reconnection back by ten seconds.
        await self.availability.announce()
        self.log.info("connected to %s as %s", self.broker.url, self.service)
        for hook in self._on_connect:
            self.spawn(hook())
        try:
            async for _ in client.messages:  # yields nothing (see _queue_into); ends when the connection does
                pass
        except asyncio.CancelledError:
            # A clean stop: say so ourselves, since the broker sends the Last Will only on a lost connection.
            await self._say_offline(client)
            raise

    async def close(self) -> None:
        """Mark the service offline (a clean stop) and cancel background work."""
        if self._client is not None and self._connected.is_set():
            await self._say_offline(self._client)
        for task in list(self._tasks):
            task.cancel()

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """Say goodbye — the instance's entry cleared, the service ``offline`` unless another instance is online —
        and wait (at most 3 s) until the broker has it: the process may end next."""

        async def acknowledged(topic: str, payload: str) -> None:
            await client.publish(topic, payload, qos=1, retain=True)

        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            await asyncio.wait_for(self.availability.goodbye(acknowledged), 3)

    def _receive(self, message: aiomqtt.Message) -> None:
        """A message, as the connection reads it: into the inbox at once, handled in order by _handle_inbox."""
        raw = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
        topic = message.topic.value
        trace.note("in", topic)
        if self.own_output.echo(topic, raw):
            return  # what this service itself last published there: no news
        if self._sites is not None and topic.startswith(self._site_prefix):
            site = topic[len(self._site_prefix):].split("/", 1)[0]
            if site not in self._sites and site != SERVICES_SEGMENT:
                self.foreign += 1
                return
        kind = self._kind_of(topic)
        if not self.inbox.put(RawIncoming(topic, raw, bool(message.retain)), state=kind.state, first=kind.first):
            self.log.warning("inbox full (%d commands and events waiting): refused %s", self.inbox.limit, topic)

    def _kind_of(self, topic: str) -> _TopicKind:
        """How the routes take messages on ``topic`` (remembered per topic)."""
        kind = self._topic_kinds.get(topic)
        if kind is None:
            if len(self._topic_kinds) >= 65_536:
                self._topic_kinds.clear()
            routes = self._routes.match(topic)
            kind = self._topic_kinds[topic] = _TopicKind(bool(routes) and all(r.latest for r in routes),
                                                         any(r.first for r in routes), any(r.own for r in routes))
        return kind

    def hurry(self) -> None:
        """Let the tasks this message woke run before the rest of the inbox: a handler that hands urgent work to
        another task (a cut to decide, a command to send) calls this; the inbox yields after the message, or
        after the messages put first that wait behind it (a site's cut is all its setpoints: all of them are
        taken in, then the event loop turns once to the commands they asked for)."""
        self._hurry = True

    async def _handle_inbox(self) -> None:
        # The inbox runs without yielding while messages wait (nothing in a handler suspends), so a task that
        # a message woke — the decision a reading made urgent, the command a setpoint asks for — would wait for
        # the whole backlog. So it yields after a message that asked it to (hurry) and after INBOX_SLICE of
        # handling at the latest; it costs a turn of the loop, only while a backlog lasts.
        sliced = time.perf_counter()
        while True:
            idle = not self.inbox
            message = await self.inbox.get()
            if idle:  # it waited for this one: a new slice
                sliced = time.perf_counter()
            trace.note("handle", message.topic)
            try:
                await self.dispatch(message.topic, message.payload, message.retain)
            except asyncio.CancelledError:
                raise
            except Exception:  # dispatch reports what it can; nothing may stop the inbox
                self.stats.handler_errors += 1
                self.log.exception("handling %s failed", message.topic)
            trace.note("done", message.topic)
            if self._hurry and time.perf_counter() - sliced <= INBOX_SLICE:
                if not self.inbox.first_waiting() and self.reader is not None:
                    # the broker passes a decision's setpoints on one by one: the next may have come in while this
                    # one was handled; one more look at the socket takes it into the same turn
                    self.reader.drain(HURRY_READ)
                if self.inbox.first_waiting():
                    continue  # the next is urgent too (a decision's other setpoints): every one before what they woke
            if self._hurry or time.perf_counter() - sliced > INBOX_SLICE:
                if self._hurry:
                    # what the woken tasks publish, or send to a charger, goes in one push at the end of their turn
                    # (traced at 1 000 chargers, an adapter's command took 0.08 ms to write at the median and
                    # 0.67 ms at p90 uncorked: taken off the CPU by the broker it woke; corked, 0.05 and 0.07 ms)
                    own = self._writer.paho.socket() if self._writer is not None else None
                    if isinstance(own, socket.socket):  # (a websocket transport wraps its own)
                        self.corks.hold(own)
                    self.corks.release_soon()
                self._hurry = False
                await asyncio.sleep(0)
                sliced = time.perf_counter()

    async def dispatch(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Validate and hand one message to every matching route."""
        self.stats.received += 1
        for route in self._routes.match(topic):
            if route.model is None:
                await self._call(route, RawIncoming(topic, payload, retain), topic, payload)
                continue
            if not payload:
                continue  # a cleared retained topic: nothing to apply
            try:
                check_bounds(payload)
                model = route.model.model_validate_json(payload)
            except PayloadError as exc:
                self.stats.rejected += 1
                await self.report_error(topic, "validation", str(exc), payload)
                continue
            except ValidationError as exc:
                self.stats.rejected += 1
                await self.report_error(topic, "validation", _describe(exc), payload)
                continue
            try:
                ref: TopicRef | None = self.topics.parse(topic)
            except TopicError:
                ref = None
            await self._call(route, Incoming(topic, ref, model, retain), topic, payload)

    async def _call(self, route: _Route, incoming: Any, topic: str, payload: bytes) -> None:
        try:
            await route.handler(incoming)
        except PayloadError as exc:  # a raw route's payload refused by shared.payload's bounds
            self.stats.rejected += 1
            await self.report_error(topic, "validation", str(exc), payload)
        except (ValueError, TopicError) as exc:
            self.stats.rejected += 1
            await self.report_error(topic, "rejected", str(exc), payload)
        except Exception as exc:  # a handler bug must not stop the service
            self.stats.handler_errors += 1
            self.log.exception("handler for %s failed", topic)
            await self.report_error(topic, "handler_error", f"{type(exc).__name__}: {exc}", payload)


def _check_granted(logger: logging.Logger, asked: list[tuple[str, int]], granted: Any) -> None:
    """Log each subscription the broker refused in its SUBACK (0x80: an ACL, a bad filter)."""
    for (topic_filter, _), code in zip(asked, granted or (), strict=False):
        value = code if isinstance(code, int) else getattr(code, "value", 0)
        if value >= 0x80:
            logger.error("the broker refused the subscription to %s (code %#x)", topic_filter, value)


def _queue_into(receive: Callable[[aiomqtt.Message], None]) -> type[asyncio.Queue[aiomqtt.Message]]:
    """aiomqtt's queue of incoming messages, replaced by one that hands each message to ``receive`` as the
    connection reads it and holds none itself. aiomqtt's own queue took a task and two loop turns per
    message; at 1 000 chargers it fell so far behind the socket that it discarded messages. Holding
    nothing, ``client.messages`` never yields and only ends — with the error — when the connection does."""

    class IntoInbox(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            receive(item)

    return IntoInbox


def _describe(exc: ValidationError) -> str:
    """A one-line account of what was wrong, naming each field."""
    parts = []
    for err in exc.errors(include_url=False)[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


@contextlib.asynccontextmanager
async def serving(runtime: Runtime, timeout: float = 10.0) -> Any:
    """Run ``runtime`` in the background for the duration of the block, connected on entry."""
    task = asyncio.get_running_loop().create_task(runtime.run())
    try:
        await runtime.wait_connected(timeout)
        yield runtime
    finally:
        await runtime.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
