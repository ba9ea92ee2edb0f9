"""The opening handshake: who is connecting (the last path segment), may it (allowlist, then a client
certificate or HTTP Basic auth against the stored hash), and which OCPP version it speaks (the websocket
subprotocol).

Refusals follow OCPP-J: an unknown charge point id gets 404, a missing or wrong password 401 (with a
``WWW-Authenticate`` challenge), a handshake offering only subprotocols we do not speak 400. A handshake
offering no subprotocol at all is taken as OCPP 1.6 (a quirk of chargers in the field).

Guessing passwords is slow and cannot take the gateway down: failed logins lock out the charge point id
and the remote address for a time that doubles with each failure (:class:`.throttle.LoginThrottle`,
answered 429 with ``Retry-After`` and without hashing anything), scrypt runs in one thread of its own, one
password at a time, with at most ``MAX_WAITING_CHECKS`` waiting (more are answered 503). A password that
already passed scrypt is remembered as a keyed digest, so a charger that reconnects with it is let in at
once, even while someone else's wrong guesses have its id locked out. An unauthenticated connection never
replaces a live authenticated session of the same charger (401; the live session stays).
"""

from __future__ import annotations

import asyncio
import hashlib
import http
import logging
import math
import secrets
import ssl
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader, NegotiationError
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from shared.clock import SYSTEM_CLOCK, Clock
from shared.models import OcppVersion
from shared.moderation import Moderator
from shared.topics import TopicError, slugify

from .config import CHARGE_POINT_ID_MAX, GatewayConfig
from .passwords import verify_password
from .throttle import LoginThrottle

log = logging.getLogger("ampmq.ocpp-gateway.handshake")

#: Subprotocols we speak, in the order we prefer them when a charger offers several.
SUBPROTOCOLS: dict[str, OcppVersion] = {"ocpp2.0.1": OcppVersion.V201, "ocpp1.6": OcppVersion.V16}
#: The version of a charger that offers no subprotocol.
DEFAULT_VERSION = OcppVersion.V16
REALM = "ampmq OCPP gateway"
#: At most this many handshake refusals are reported per window (the rest are counted).
REFUSAL_REPORTS = 20
REFUSAL_WINDOW = 10.0

#: Failed logins: per charge point id (a few free, then 1 s doubling to 60 s) and per remote address
#: (likewise, up to 300 s), each table capped at this many keys.
THROTTLE_FREE_FAILURES = 3
ID_LOCKOUT_MAX = 60.0
ADDRESS_LOCKOUT_MAX = 300.0
THROTTLED_ADDRESSES = 4096
#: Password checks waiting for the scrypt thread; a handshake beyond this is answered 503 at once.
MAX_WAITING_CHECKS = 8
#: The one thread that runs scrypt (128 MiB and ~0.3 s per check at the default cost): a storm of logins
#: queues here instead of taking every core and, per thread, memory the allocator keeps.
_PASSWORD_CHECKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocpp-password-check")

#: ``report(site or None, error code, message)``: how a refusal reaches the errors topic (never blocks).
Reporter = Callable[[str | None, str, str], None]


@dataclass(frozen=True, slots=True)
class Admission:
    """A charger let through the handshake."""

    ocpp_id: str
    charger: str
    site: str
    #: Unknown id admitted in setup mode: its BootNotification is answered Pending.
    pending: bool = False
    #: How it proved who it is: ``password``, ``certificate``, or ``None`` (``auth: none``, setup mode).
    authenticated_by: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.authenticated_by is not None


class Refusal(Exception):
    """Why a charger is not let in, and how to answer it."""

    def __init__(self, status: http.HTTPStatus, error: str, message: str, *, challenge: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.challenge, self.retry_after = challenge, retry_after


def charge_point_id(path: str) -> str:
    """The charge point id: the last non-empty segment of the request path, URL-decoded."""
    segments = [s for s in urlsplit(path).path.split("/") if s]
    return unquote(segments[-1]) if segments else ""


def version_of(subprotocol: str | None) -> OcppVersion:
    return SUBPROTOCOLS.get(subprotocol or "", DEFAULT_VERSION)


def pick_subprotocol(offered: Sequence[str]) -> Subprotocol | None:
    """Our preferred OCPP version among those offered; None when none is offered (the 1.6 quirk)."""
    if not offered:
        return None
    for name in SUBPROTOCOLS:
        if name in offered:
            return Subprotocol(name)
    raise NegotiationError(f"no OCPP version we speak among {list(offered)[:5]}; we speak {list(SUBPROTOCOLS)}")


def server_ssl_context(config: GatewayConfig) -> ssl.SSLContext | None:
    """TLS for ``wss://`` (OCPP security profile 2) when a certificate and key are configured."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_client_ca is not None:  # security profile 3: a certificate, if sent, must be the CA's
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=config.tls_client_ca)
    return context


def certificate_name(connection: ServerConnection, field: str) -> str | None:
    """The ``field`` of the subject of the client certificate the TLS handshake verified, if any."""
    transport = connection.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    certificate = ssl_object.getpeercert()
    if not certificate:
        return None
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == field:
                return str(value)
    return ""


def remote_host(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


class Handshake:
    """``process_request`` for websockets' ``serve``: admits or refuses each charger."""

    def __init__(self, config: GatewayConfig, report: Reporter, taken: Callable[[str], str | None],
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self._report_to = report
        self._moderator = Moderator(clock, REFUSAL_REPORTS, REFUSAL_WINDOW)
        #: Which configured charge point id owns a topic id (so an unknown id cannot take a known one's topics).
        self._taken = taken
        #: The latest authenticated connection of each configured charger (an unauthenticated connection
        #: may not replace it while it is open, or still opening).
        self._authenticated: dict[str, weakref.ReferenceType[ServerConnection]] = {}
        self._configured = {slugify(cp_id): cp_id for cp_id in config.chargers}
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, Admission] = weakref.WeakKeyDictionary()
        # Passwords that already passed the slow hash, kept only as a keyed digest: reconnect storms stay cheap.
        self._pepper = secrets.token_bytes(16)
        self._verified: dict[str, bytes] = {}
        self.failed_by_id = LoginThrottle(clock, max_keys=max(1, len(config.chargers)),
                                          free_failures=THROTTLE_FREE_FAILURES, max_delay=ID_LOCKOUT_MAX)
        self.failed_by_address = LoginThrottle(clock, max_keys=THROTTLED_ADDRESSES,
                                               free_failures=THROTTLE_FREE_FAILURES, max_delay=ADDRESS_LOCKOUT_MAX)
        self._waiting_checks = 0
        self._one_check_at_a_time = asyncio.Lock()
        self.refused = 0
        #: Passwords run through scrypt (the throttle keeps this small under a storm of guesses).
        self.password_checks = 0
        for cp_id, entry in config.chargers.items():
            if entry.auth == "none":
                log.warning("charger %s has auth: none: anyone who knows its id can connect as it", cp_id)
        if config.allow_unknown == "pending" and not config.require_password:
            log.warning("setup mode (allow_unknown: pending): unknown chargers connect without authentication")

    def admission(self, connection: ServerConnection) -> Admission | None:
        return self._admitted.get(connection)

    def select_subprotocol(self, connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        """``select_subprotocol`` for websockets' ``serve``: a refusal is reported like the others."""
        try:
            return pick_subprotocol(offered)
        except NegotiationError as exc:
            admission = self._admitted.pop(connection, None)
            self.refused += 1
            self._report(admission.site if admission else None, "unsupported_subprotocol",
                         f"charge point {admission.ocpp_id if admission else '?'!r}: {exc}")
            raise

    async def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        ocpp_id = charge_point_id(request.path)
        if not ocpp_id or len(ocpp_id) > CHARGE_POINT_ID_MAX:
            return await self._refuse(connection, None, Refusal(
                http.HTTPStatus.NOT_FOUND, "no_charge_point_id", f"path {request.path[:100]!r} names no charge "
                "point id"))
        site = self.config.site_of(ocpp_id)
        try:
            admission = await self._admit(connection, request.headers, ocpp_id, site)
        except Refusal as refusal:
            return await self._refuse(connection, site if ocpp_id in self.config.chargers else None, refusal)
        self._admitted[connection] = admission
        return None

    async def _admit(self, connection: ServerConnection, headers: Headers, ocpp_id: str, site: str) -> Admission:
        """The admission of ``ocpp_id``, or :class:`Refusal`."""
        config = self.config
        entry = config.chargers.get(ocpp_id)
        try:
            charger = slugify(ocpp_id)
        except TopicError:
            raise Refusal(http.HTTPStatus.NOT_FOUND, "unknown_charger",
                          f"charge point id {ocpp_id!r} has no usable character") from None
        if entry is None:
            owner = self._configured.get(charger) or self._taken(charger)
            if config.allow_unknown != "pending" or (owner is not None and owner != ocpp_id):
                raise Refusal(http.HTTPStatus.NOT_FOUND, "unknown_charger",
                              f"charge point {ocpp_id!r} is not in the allowlist (add it to ocpp_gateway.chargers "
                              "with a password_hash made by `ampmq hash-password`)")
            if config.require_password:
                raise Refusal(http.HTTPStatus.UNAUTHORIZED, "unauthorized",
                              f"unknown charge point {ocpp_id!r} has no password", challenge=True)
            admission = Admission(ocpp_id, charger, site, pending=True)
        else:
            admission = Admission(ocpp_id, charger, site,
                                  authenticated_by=await self._authenticate(connection, headers, ocpp_id))
        if admission.authenticated:
            self._authenticated[charger] = weakref.ref(connection)
        else:
            held = self._authenticated.get(charger)
            live = held() if held is not None else None
            if live is not None and live.state in (State.CONNECTING, State.OPEN):
                raise Refusal(http.HTTPStatus.UNAUTHORIZED, "unauthorized",
                              f"charge point {ocpp_id!r}: an unauthenticated connection cannot replace its "
                              "authenticated session", challenge=True)
        return admission

    async def _authenticate(self, connection: ServerConnection, headers: Headers, ocpp_id: str) -> str | None:
        """How a configured charger proved who it is (None for ``auth: none``), or :class:`Refusal`."""
        entry = self.config.chargers[ocpp_id]
        if self.config.tls_client_ca is not None:
            name = certificate_name(connection, self.config.client_certificate_field)
            expected = entry.certificate_name or ocpp_id
            if name is not None and secrets.compare_digest(name.encode(), expected.encode()):
                return "certificate"
            if name is not None:
                self._failed(connection, ocpp_id)
                raise Refusal(http.HTTPStatus.UNAUTHORIZED, "unauthorized",
                              f"charge point {ocpp_id!r}: its client certificate names {name[:64]!r} in "
                              f"{self.config.client_certificate_field}, not {expected!r}")
        if entry.auth == "none":
            return None
        if entry.auth == "certificate":
            raise Refusal(http.HTTPStatus.UNAUTHORIZED, "unauthorized",
                          f"charge point {ocpp_id!r} sent no client certificate (auth: certificate)")
        assert entry.password_hash is not None  # the config validated it
        await self._check_password(connection, headers, ocpp_id, entry.password_hash)
        return "password"

    async def _check_password(self, connection: ServerConnection, headers: Headers, ocpp_id: str,
                              stored: str) -> None:
        """Return when the Basic credentials are right, else raise :class:`Refusal`: 401 for wrong ones,
        429 while the id or the address is locked out, 503 while too many checks wait."""
        def wrong(why: str) -> Refusal:
            return Refusal(http.HTTPStatus.UNAUTHORIZED, "unauthorized", f"charge point {ocpp_id!r}: {why}",
                           challenge=True)

        try:
            username, password = parse_authorization_basic(headers["Authorization"])
        except KeyError:
            raise wrong("no HTTP Basic credentials") from None
        except InvalidHeader:
            self._failed(connection, ocpp_id)
            raise wrong("unreadable Authorization header") from None
        digest = hashlib.sha256(self._pepper + stored.encode() + b"\0" + password.encode()).digest()
        if username == ocpp_id and secrets.compare_digest(self._verified.get(ocpp_id, b""), digest):
            return  # the password that passed before: no lockout applies, no scrypt runs
        address = remote_host(connection)
        self._raise_if_locked_out(ocpp_id, address)
        if username != ocpp_id:
            self._failed(connection, ocpp_id)
            raise wrong("Basic auth user name is not the charge point id")
        if self._waiting_checks >= MAX_WAITING_CHECKS:
            raise Refusal(http.HTTPStatus.SERVICE_UNAVAILABLE, "login_busy",
                          f"charge point {ocpp_id!r}: {self._waiting_checks} password checks already waiting",
                          retry_after=1)
        self._waiting_checks += 1
        try:
            async with self._one_check_at_a_time:
                # guesses sent in parallel waited here while the ones before them failed: look again
                self._raise_if_locked_out(ocpp_id, address)
                self.password_checks += 1
                ok = await asyncio.get_running_loop().run_in_executor(_PASSWORD_CHECKER, verify_password,
                                                                      password, stored)
        finally:
            self._waiting_checks -= 1
        if not ok:
            self._failed(connection, ocpp_id)
            raise wrong("wrong password")
        self.failed_by_id.succeeded(ocpp_id)
        self._verified[ocpp_id] = digest

    def _raise_if_locked_out(self, ocpp_id: str, address: str) -> None:
        locked = max(self.failed_by_id.locked_for(ocpp_id), self.failed_by_address.locked_for(address))
        if locked > 0:
            raise Refusal(http.HTTPStatus.TOO_MANY_REQUESTS, "login_throttled",
                          f"charge point {ocpp_id!r} from {address}: too many failed logins, locked out for "
                          f"{locked:.0f}s more", retry_after=locked)

    def _failed(self, connection: ServerConnection, ocpp_id: str) -> None:
        self.failed_by_id.failed(ocpp_id)
        self.failed_by_address.failed(remote_host(connection))

    @property
    def suppressed(self) -> int:
        return self._moderator.suppressed

    def _report(self, site: str | None, error: str, message: str) -> None:
        """Report a refusal, at most ``REFUSAL_REPORTS`` per ``REFUSAL_WINDOW`` seconds: a scanner or a
        misconfigured fleet knocking thousands of times must not crowd the errors topic (or the outbox
        the chargers' state goes through). The refusals beyond are counted and summed up once."""
        allowed, held_back = self._moderator.allow()
        if held_back:
            self._report_to(None, "refusals_suppressed", self._moderator.summary(held_back, "handshake refusals"))
        if allowed:
            self._report_to(site, error, message)
        else:
            log.info("refused (not reported: too many): %s: %s", error, message)

    async def _refuse(self, connection: ServerConnection, site: str | None, refusal: Refusal) -> Response:
        self.refused += 1
        self._report(site, refusal.error, refusal.message)
        response = connection.respond(refusal.status, f"{refusal.status.phrase}\n")
        if refusal.challenge:
            response.headers["WWW-Authenticate"] = build_www_authenticate_basic(REALM)
        if refusal.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after)))
        return response
