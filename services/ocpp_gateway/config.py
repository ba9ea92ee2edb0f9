"""The ``ocpp_gateway`` config section: where to listen, which chargers may connect, and how to treat them.

.. code-block:: yaml

    ocpp_gateway:
      host: 0.0.0.0
      port: 9000
      tls_cert: /etc/ampmq/gateway.crt    # both set: wss:// (OCPP security profile 2)
      tls_key: /etc/ampmq/gateway.key
      tls_client_ca: /etc/ampmq/chargers-ca.crt  # optional: client certificates (security profile 3)
      default_site: home
      allow_unknown: false                # or "pending": unknown ids connect and are held Pending
      authorize: allowlist                # or accept_all
      id_tags: [RFID-0001]
      call_timeout: 5                     # a command's timeout unless it sets its own
      max_call_timeout: 10                # and never longer (a charging profile waits for at most one)
      chargers:
        CP_001: {site: home, password_hash: "scrypt$131072$8$1$...$..."}   # HTTP Basic auth (profile 1)
        CP_002: {site: home, auth: certificate}   # only its client certificate (CN = CP_002) lets it in
        LAB_1: {site: lab, auth: none}            # no authentication at all: a warning at every start

Every configured charger authenticates: with a password (the default ``auth: password``, which needs a
``password_hash``), with a client certificate (``auth: certificate``; a charger with a password may also
present a certificate instead), or it says ``auth: none`` explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shared.config import SectionModel
from shared.models import TopicId
from shared.topics import TopicError, slugify

from .passwords import parse_hash

ChargerAuth = Literal["password", "certificate", "none"]

#: OCPP 2.0.1 allows identities of up to 48 characters (1.6 chargers use 20 or fewer).
CHARGE_POINT_ID_MAX = 48


class ChargerConfig(SectionModel):
    """One charger the gateway knows."""

    #: The site the charger belongs to (``default_site`` when left out).
    site: TopicId | None = None
    #: How it proves who it is: ``password`` (HTTP Basic auth against ``password_hash``, or a client
    #: certificate), ``certificate`` (only a client certificate), ``none`` (nothing: anyone who knows the
    #: id is this charger; logged as a warning at start).
    auth: ChargerAuth = "password"
    #: Salted scrypt hash of its HTTP Basic password (``ampmq hash-password``; see :mod:`.passwords`).
    password_hash: str | None = None
    #: The name its client certificate carries in ``client_certificate_field`` (default: the charge point
    #: id), for chargers whose certificate names them otherwise (OCPP 2.0.1 puts the serial number there).
    certificate_name: str | None = None

    @field_validator("password_hash")
    @classmethod
    def _readable_hash(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hash(value)
        return value

    @model_validator(mode="after")
    def _auth_is_complete(self) -> ChargerConfig:
        if self.auth == "password" and self.password_hash is None:
            raise ValueError("a charger needs a password_hash (make one with `ampmq hash-password`), or "
                             "auth: certificate, or auth: none to let it in unauthenticated")
        if self.auth != "password" and self.password_hash is not None:
            raise ValueError(f"auth: {self.auth} and a password_hash contradict each other")
        return self


class GatewayConfig(SectionModel):
    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 9000
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: CA (PEM) whose client certificates authenticate chargers (OCPP security profile 3). Chargers
    #: without a certificate still connect with a password; one presenting a certificate not signed by
    #: this CA fails the TLS handshake.
    tls_client_ca: Path | None = None
    #: The subject field of a client certificate that names the charger (``commonName``, or e.g.
    #: ``serialNumber``); it must equal the charger's ``certificate_name`` (default: its charge point id).
    client_certificate_field: str = "commonName"
    default_site: TopicId = "home"
    chargers: dict[str, ChargerConfig] = Field(default_factory=dict)
    #: Partitioning over several gateway instances on one broker (each on its own port, with its own sites'
    #: chargers): the only sites this instance serves. Commands and retained state of other sites are not
    #: its business (not even to answer ``offline``). None: every site under the root.
    serve_only: list[TopicId] | None = None
    #: ``False``: unknown charge point ids are refused at the handshake. ``"pending"``: setup mode, they
    #: connect (on ``default_site``) and their BootNotification is answered Pending.
    allow_unknown: Literal[False, "pending"] = False
    #: When true, nothing connects unauthenticated: ``auth: none`` is a config error and unknown chargers
    #: are refused even in setup mode (``allow_unknown: pending``).
    require_password: bool = False
    authorize: Literal["accept_all", "allowlist"] = "accept_all"
    id_tags: list[str] = Field(default_factory=list)
    #: Default time a charger has to answer a command (an OcppCommand may set its own ``timeout``). Short:
    #: one CALL is outstanding at a time (OCPP-J), so an unanswered command holds the next charging
    #: profile back this long (see call_queue).
    call_timeout: Annotated[float, Field(gt=0, le=600)] = 5.0
    #: The longest timeout a command may ask for (a longer one is cut to this).
    max_call_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    #: Heartbeat interval told to chargers in the BootNotification answer, seconds.
    heartbeat_interval: Annotated[int, Field(ge=10, le=86_400)] = 300
    #: Websocket keepalive: a charger that does not answer a ping within ``ping_timeout`` is dropped.
    ping_interval: Annotated[float, Field(gt=0)] | None = 20.0
    ping_timeout: Annotated[float, Field(gt=0)] | None = 20.0
    #: Offer permessage-deflate (RFC 7692) to chargers that ask for it. Off by default: chargers are on the
    #: site's own network, where bandwidth costs nothing, and compression costs two to three times the memory
    #: per charger and CPU for every frame, a cut's included (see docs/ocpp-gateway.md for the figures).
    websocket_compression: bool = False
    #: Largest OCPP frame accepted; a bigger one closes the connection (1009, message too big).
    max_message_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    #: Commands waiting for one charger; more are answered ``busy``.
    max_pending_commands: Annotated[int, Field(ge=1, le=1000)] = 16
    #: Messages waiting to be published to MQTT; when full, chargers are read more slowly (backpressure).
    outbox_size: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000

    @field_validator("chargers")
    @classmethod
    def _distinct_topic_ids(cls, chargers: dict[str, ChargerConfig]) -> dict[str, ChargerConfig]:
        seen: dict[str, str] = {}
        for cp_id in chargers:
            if not cp_id or len(cp_id) > CHARGE_POINT_ID_MAX or "/" in cp_id:
                raise ValueError(f"charge point id {cp_id!r} must be 1-{CHARGE_POINT_ID_MAX} characters, no '/'")
            try:
                slug = slugify(cp_id)
            except TopicError as exc:
                raise ValueError(str(exc)) from exc
            if slug in seen:
                raise ValueError(f"charge point ids {seen[slug]!r} and {cp_id!r} share the topic id {slug!r}")
            seen[slug] = cp_id
        return chargers

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together (both set for wss://, neither for ws://)")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key (client certificates need wss://)")
        if self.tls_client_ca is None:
            by_certificate = [cp for cp, c in self.chargers.items() if c.auth == "certificate"]
            if by_certificate:
                raise ValueError(f"chargers with auth: certificate need tls_client_ca: {by_certificate[:5]}")
        if self.require_password:
            unauthenticated = [cp for cp, c in self.chargers.items() if c.auth == "none"]
            if unauthenticated:
                raise ValueError(f"require_password is on but chargers have auth: none: {unauthenticated[:5]}")
        if self.call_timeout > self.max_call_timeout:
            raise ValueError(f"call_timeout ({self.call_timeout:g} s) is above max_call_timeout "
                             f"({self.max_call_timeout:g} s), which bounds how long a charging profile may wait "
                             "behind another command: lower call_timeout, or raise both if you mean it")
        if self.authorize == "allowlist" and not self.id_tags:
            raise ValueError("authorize: allowlist needs id_tags")
        return self

    def site_of(self, cp_id: str) -> str:
        entry = self.chargers.get(cp_id)
        return entry.site if entry is not None and entry.site is not None else self.default_site
