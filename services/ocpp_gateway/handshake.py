"""The opening handshake: who is connecting (the last path segment), may it (allowlist, HTTP Basic
auth against the stored hash), and which OCPP version it speaks (the websocket subprotocol).

Refusals follow OCPP-J: an unknown charge point id gets 404, a missing or wrong password 401 (with a
``WWW-Authenticate`` challenge), a handshake offering only subprotocols we do not speak 400. A handshake
offering no subprotocol at all is taken as OCPP 1.6 (a quirk of chargers in the field).
"""

from __future__ import annotations

import asyncio
import hashlib
import http
import logging
import secrets
import ssl
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader, NegotiationError
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from shared.clock import SYSTEM_CLOCK, Clock
from shared.models import OcppVersion
from shared.topics import TopicError, slugify

from .config import CHARGE_POINT_ID_MAX, GatewayConfig
from .moderation import Moderator
from .passwords import verify_password

log = logging.getLogger("ampmq.ocpp-gateway.handshake")

#: Subprotocols we speak, in the order we prefer them when a charger offers several.
SUBPROTOCOLS: dict[str, OcppVersion] = {"ocpp2.0.1": OcppVersion.V201, "ocpp1.6": OcppVersion.V16}
#: The version of a charger that offers no subprotocol.
DEFAULT_VERSION = OcppVersion.V16
REALM = "ampmq OCPP gateway"
#: At most this many handshake refusals are reported per window (the rest are counted).
REFUSAL_REPORTS = 20
REFUSAL_WINDOW = 10.0

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
    return context


class Handshake:
    """``process_request`` for websockets' ``serve``: admits or refuses each charger."""

    def __init__(self, config: GatewayConfig, report: Reporter, taken: Callable[[str], str | None],
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self._report_to = report
        self._moderator = Moderator(clock, REFUSAL_REPORTS, REFUSAL_WINDOW)
        #: Which configured charge point id owns a topic id (so an unknown id cannot take a known one's topics).
        self._taken = taken
        self._configured = {slugify(cp_id): cp_id for cp_id in config.chargers}
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, Admission] = weakref.WeakKeyDictionary()
        # Passwords that already passed the slow hash, kept only as a keyed digest: reconnect storms stay cheap.
        self._pepper = secrets.token_bytes(16)
        self._verified: dict[str, bytes] = {}
        self.refused = 0

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
        config = self.config
        if not ocpp_id or len(ocpp_id) > CHARGE_POINT_ID_MAX:
            return await self._refuse(connection, None, http.HTTPStatus.NOT_FOUND, "no_charge_point_id",
                                      f"path {request.path[:100]!r} names no charge point id")
        entry = config.chargers.get(ocpp_id)
        site = config.site_of(ocpp_id)
        try:
            charger = slugify(ocpp_id)
        except TopicError:
            return await self._refuse(connection, None, http.HTTPStatus.NOT_FOUND, "unknown_charger",
                                      f"charge point id {ocpp_id!r} has no usable character")
        if entry is None:
            owner = self._configured.get(charger) or self._taken(charger)
            if config.allow_unknown != "pending" or (owner is not None and owner != ocpp_id):
                return await self._refuse(connection, None, http.HTTPStatus.NOT_FOUND, "unknown_charger",
                                          f"charge point {ocpp_id!r} is not in the allowlist")
            if config.require_password:
                return await self._refuse(connection, site, http.HTTPStatus.UNAUTHORIZED, "unauthorized",
                                          f"unknown charge point {ocpp_id!r} has no password", challenge=True)
            admission = Admission(ocpp_id, charger, site, pending=True)
        else:
            if entry.password_hash is not None:
                refusal = await self._check_password(connection, request.headers, ocpp_id, entry.password_hash)
                if refusal is not None:
                    return await self._refuse(connection, site, http.HTTPStatus.UNAUTHORIZED, "unauthorized",
                                              f"charge point {ocpp_id!r}: {refusal}", challenge=True)
            admission = Admission(ocpp_id, charger, site)
        self._admitted[connection] = admission
        return None

    async def _check_password(self, connection: ServerConnection, headers: Headers, ocpp_id: str,
                              stored: str) -> str | None:
        """None when the Basic credentials are right, else why not."""
        try:
            username, password = parse_authorization_basic(headers["Authorization"])
        except KeyError:
            return "no HTTP Basic credentials"
        except InvalidHeader:
            return "unreadable Authorization header"
        if username != ocpp_id:
            return "Basic auth user name is not the charge point id"
        digest = hashlib.sha256(self._pepper + stored.encode() + b"\0" + password.encode()).digest()
        if secrets.compare_digest(self._verified.get(ocpp_id, b""), digest):
            return None
        ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
        if not ok:
            return "wrong password"
        self._verified[ocpp_id] = digest
        return None

    @property
    def suppressed(self) -> int:
        return self._moderator.suppressed

    def _report(self, site: str | None, error: str, message: str) -> None:
        """Report a refusal, at most ``REFUSAL_REPORTS`` per ``REFUSAL_WINDOW`` seconds: a scanner or a
        misconfigured fleet knocking thousands of times must not crowd the errors topic (or the outbox
        the chargers' state goes through). The refusals beyond are counted and summed up once."""
        allowed, held_back = self._moderator.allow()
        if held_back:
            self._report_to(None, "refusals_suppressed", f"{held_back} more handshake refusals in "
                            f"{REFUSAL_WINDOW:g}s were not reported one by one")
        if allowed:
            self._report_to(site, error, message)
        else:
            log.info("refused (not reported: too many): %s: %s", error, message)

    async def _refuse(self, connection: ServerConnection, site: str | None, status: http.HTTPStatus, error: str,
                      message: str, *, challenge: bool = False) -> Response:
        self.refused += 1
        self._report(site, error, message)
        response = connection.respond(status, f"{status.phrase}\n")
        if challenge:
            response.headers["WWW-Authenticate"] = build_www_authenticate_basic(REALM)
        return response
