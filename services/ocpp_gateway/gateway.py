"""The gateway: a websocket server for chargers on one side, the service's MQTT runtime on the other.

``async with Gateway(config, runtime).running() as gateway`` listens (``gateway.port`` is the bound port,
useful with ``port: 0``), and on the way out closes every charger's socket, publishes each charger
``offline`` and waits for the outbox to drain. Each charger's availability is retained ``online`` /
``offline``; when the whole gateway dies without a clean stop, only the service's Last Will
(``services/ocpp-gateway/availability`` = ``offline``) says so: consumers treat every charger as offline
while the gateway's availability is offline. When it comes back, :class:`.recall.Recall` turns every
charger without a socket ``offline`` and reads the transaction → connector map back from the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.frames import CloseCode

from shared.clock import SYSTEM_CLOCK, Clock
from shared.models import ChargerEvent, OcppCommand, OcppResult, OcppVersion
from shared.mqtt import OFFLINE, ONLINE, Incoming, Runtime
from shared.topics import Leaf

from .call_queue import URGENT_ACTIONS
from .commands import ACTIONS, execute
from .config import GatewayConfig
from .handshake import SUBPROTOCOLS, Handshake, server_ssl_context, version_of
from .metrics import TO_CHARGER, UNKNOWN_ACTION, GatewayCollector
from .outbox import Outbox
from .recall import Recall
from .registry import Registry
from .session import ChargerSession, GatewayContext
from .v16 import ChargePoint16
from .v201 import ChargePoint201

log = logging.getLogger("ampmq.ocpp-gateway")

SESSION_CLASSES: dict[OcppVersion, type[ChargerSession]] = {
    OcppVersion.V16: ChargePoint16,
    OcppVersion.V201: ChargePoint201,
}
_CMD_PREFIX = f"{Leaf.CMD}/"


class _QuietHandshakeFailures(logging.Filter):
    """websockets logs every failed opening handshake (a port scan, a health check, a charger that hangs
    up mid-handshake) as an ERROR with a traceback; one INFO line says as much."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "opening handshake failed" and record.exc_info:
            error = record.exc_info[1]
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info, record.exc_text = (
                "opening handshake failed: %s", (error,), None, None)
        return True


websockets_log = logging.getLogger("ampmq.ocpp-gateway.websockets")
websockets_log.addFilter(_QuietHandshakeFailures())


class Gateway:
    """The OCPP central system of ampmq, bridged to MQTT."""

    def __init__(self, config: GatewayConfig, runtime: Runtime, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.runtime = runtime
        runtime.serve_only(config.serve_only)  # another instance's sites: dropped before any parsing
        self.topics = runtime.topics
        self.outbox = Outbox(runtime, config.outbox_size)
        self.registry = Registry()
        self.context = GatewayContext(config, self.topics, self.outbox, clock, corks=runtime.corks)
        self.handshake = Handshake(config, self.outbox.report, self.registry.owner, clock)
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # commands go before the chargers' reports waiting in the inbox; a site's cut (a profile for each of its
        # chargers, read together) is taken in whole, and the frames its tasks send leave in one push at the
        # end of that turn (ChargerSession.request)
        runtime.route(self.topics.charger_filter(f"{Leaf.CMD}/+"), OcppCommand, first=True)(self._on_command)
        self.recall = Recall(config, runtime, self.registry, self.outbox)
        runtime.metrics.register(GatewayCollector(self))
        runtime.on_connect(self._republish_state)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the gateway is not listening")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.tls_cert else "ws"
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host
        return f"{scheme}://{host}:{self.port}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Listen for chargers for the duration of the block."""
        outbox_worker = asyncio.get_running_loop().create_task(self.outbox.run(), name="ocpp-gateway-outbox")
        config = self.config
        try:
            async with serve(
                self._handle, config.host, config.port,
                ssl=server_ssl_context(config),
                subprotocols=[*SUBPROTOCOLS],  # type: ignore[list-item]
                select_subprotocol=self.handshake.select_subprotocol,
                process_request=self.handshake,
                max_size=config.max_message_bytes,
                compression="deflate" if config.websocket_compression else None,
                max_queue=4,
                ping_interval=config.ping_interval,
                ping_timeout=config.ping_timeout,
                close_timeout=2,
                server_header="ampmq-ocpp-gateway",
                logger=websockets_log,
            ) as server:
                self._server = server
                log.info("OCPP gateway listening on %s", self.url)
                try:
                    yield self
                finally:
                    server.close(close_connections=True)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(server.wait_closed(), 5)
                    for session in self.registry:  # sockets that did not close in time
                        await self._gone(session, "gateway stopped")
                    await self.outbox.drain()
        finally:
            self._server = None
            outbox_worker.cancel()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await outbox_worker

    # -- chargers -----------------------------------------------------------------------------------
    async def _handle(self, connection: ServerConnection) -> None:
        admission = self.handshake.admission(connection)
        if admission is None:  # cannot happen: process_request admitted it
            await connection.close(CloseCode.POLICY_VIOLATION, "not admitted")
            return
        version = version_of(connection.subprotocol)
        session = SESSION_CLASSES[version](admission, connection, self.context, self.registry.memory(admission.charger))
        old = self.registry.add(session)
        if old is not None:
            old.close()
            self._spawn(old.connection.close(CloseCode.NORMAL_CLOSURE, "replaced by a new connection"))
        log.info("charger %s connected (OCPP %s, site %s)%s", admission.ocpp_id, version, admission.site,
                 " replacing its old connection" if old else "")
        await self.outbox.put(self.topics.charger_availability(session.site, session.charger), ONLINE, retain=True)
        await session.publish(self.topics.charger_event(session.site, session.charger, "connected"), ChargerEvent(
            site=session.site, charger=session.charger, name="connected",
            data={"ocpp_version": version.value, "subprotocol": connection.subprotocol, "replaced": old is not None,
                  "pending": admission.pending}, ts=session.now()), retain=False)
        reason = "closed"
        try:
            await session.start()
        except ConnectionClosedError as exc:
            reason = self._abnormal_close(session, exc)
        except ConnectionClosed:
            pass
        except Exception:  # a bug in one session never takes the gateway down
            log.exception("session of %s failed", admission.ocpp_id)
            session.report("internal_error", "session failed; connection closed")
            reason = "internal error"
        finally:
            await self._gone(session, reason)

    def _abnormal_close(self, session: ChargerSession, exc: ConnectionClosedError) -> str:
        if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
            session.report("oversized_message", f"frame larger than {self.config.max_message_bytes} bytes; "
                           "connection closed (1009)")
            return "oversized message"
        if exc.sent is not None and exc.sent.code == CloseCode.PROTOCOL_ERROR:
            session.report("protocol_error", f"websocket protocol error: {exc.sent.reason}")
            return "websocket protocol error"
        log.info("charger %s lost: %s", session.admission.ocpp_id, exc)
        return "connection lost"

    async def _gone(self, session: ChargerSession, reason: str) -> None:
        session.close()
        if not self.registry.remove(session):
            return  # replaced by a newer connection, which owns the availability now
        log.info("charger %s offline (%s)", session.admission.ocpp_id, reason)
        await self.outbox.put(self.topics.charger_availability(session.site, session.charger), OFFLINE, retain=True)
        await session.publish(self.topics.charger_event(session.site, session.charger, "disconnected"), ChargerEvent(
            site=session.site, charger=session.charger, name="disconnected", data={"reason": reason},
            ts=session.now()), retain=False)

    async def _republish_state(self) -> None:
        """After an MQTT (re)connect: the broker may have lost retained state while we were away, and what
        chargers said meanwhile was dropped. Availability, boot and connector status go out again (meter
        values and heartbeats renew themselves); configured chargers without a socket are ``offline``."""
        self.outbox.allow_in_flight()
        await self.recall.announce_absent()
        for session in self.registry:
            await self.outbox.put(self.topics.charger_availability(session.site, session.charger), ONLINE,
                                  retain=True)
            if session.memory.boot is not None:
                await session.publish(self.topics.charger_boot(session.site, session.charger), session.memory.boot)
            for status in list(session.memory.status.values()):
                await session.publish(self.topics.connector_status(session.site, session.charger, status.connector),
                                      status)

    # -- commands -----------------------------------------------------------------------------------
    async def _on_command(self, msg: Incoming[OcppCommand]) -> None:
        ref = msg.ref
        if ref is None or ref.site is None or ref.id is None or not ref.leaf.startswith(_CMD_PREFIX):
            raise ValueError(f"{msg.topic} is not a charger command topic")
        site, charger, action = ref.site, ref.id, ref.leaf[len(_CMD_PREFIX):]
        command = msg.payload
        session = self.registry.get(charger)

        def answer(error: str, message: str) -> None:
            known = any(action in actions for actions in ACTIONS.values())
            self.context.stats.error(TO_CHARGER, action if known else UNKNOWN_ACTION, error)
            self.outbox.put_nowait(self.topics.charger_result(site, charger, action), OcppResult(
                site=site, charger=charger, action=action[:128], request_id=command.request_id, ok=False,
                error=error, message=message, ts=self.context.clock.now()))

        if session is None or session.site != site:
            answer("offline", f"charger {charger} is not connected on site {site}")
            return
        if action not in ACTIONS[session.version]:
            session.report("unknown_action", f"command {action!r} is not an OCPP {session.version} "
                           "central-system action", msg.topic)
            answer("unknown_action", f"{action!r} is not something an OCPP {session.version} central system "
                         f"can ask; known: {', '.join(sorted(ACTIONS[session.version]))}")
            return
        urgent = action in URGENT_ACTIONS
        waiting = session.waiting_profiles if urgent else session.waiting_commands
        if waiting >= self.config.max_pending_commands:
            answer("busy", f"{waiting} {'charging profiles' if urgent else 'commands'} are already waiting for "
                           f"charger {charger}")
            return
        asked = command.timeout if "timeout" in command.model_fields_set else self.config.call_timeout
        timeout = min(asked, self.config.max_call_timeout)
        if urgent:
            session.waiting_profiles += 1
        else:
            session.waiting_commands += 1
        self._spawn(self._run_command(session, action, command, timeout))
        if urgent:
            self.runtime.hurry()  # a charging profile goes to the charger before the rest of the inbox

    async def _run_command(self, session: ChargerSession, action: str, command: OcppCommand, timeout: float) -> None:
        try:
            result = await execute(session, action, command, timeout)
        finally:
            if action in URGENT_ACTIONS:
                session.waiting_profiles -= 1
            else:
                session.waiting_commands -= 1
        self.context.stats.call(TO_CHARGER, action)
        if not result.ok:
            self.context.stats.error(TO_CHARGER, action, result.error or "failed")
        await self.outbox.put(self.topics.charger_result(session.site, session.charger, action), result)

    def _spawn(self, coro: Any) -> None:
        task = self.runtime.spawn(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
