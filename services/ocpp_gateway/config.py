"""The ``ocpp_gateway`` config section: where to listen, which chargers may connect, and how to treat them.

.. code-block:: yaml

    ocpp_gateway:
      host: 0.0.0.0
      port: 9000
      tls_cert: /etc/ampmq/gateway.crt    # both set: wss:// (OCPP security profile 2)
      tls_key: /etc/ampmq/gateway.key
      default_site: home
      allow_unknown: false                # or "pending": unknown ids connect and are held Pending
      require_password: true              # every charger needs HTTP Basic auth (security profile 1)
      authorize: allowlist                # or accept_all
      id_tags: [RFID-0001]
      call_timeout: 5                     # a command's timeout unless it sets its own
      max_call_timeout: 10                # and never longer (a charging profile waits for at most one)
      chargers:
        CP_001: {site: home, password_hash: "scrypt$16384$8$1$...$..."}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shared.config import SectionModel
from shared.models import TopicId
from shared.topics import TopicError, slugify

from .passwords import parse_hash

#: OCPP 2.0.1 allows identities of up to 48 characters (1.6 chargers use 20 or fewer).
CHARGE_POINT_ID_MAX = 48


class ChargerConfig(SectionModel):
    """One charger the gateway knows."""

    #: The site the charger belongs to (``default_site`` when left out).
    site: TopicId | None = None
    #: Salted scrypt hash of its HTTP Basic password (see :mod:`services.ocpp_gateway.passwords`).
    password_hash: str | None = None

    @field_validator("password_hash")
    @classmethod
    def _readable_hash(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hash(value)
        return value


class GatewayConfig(SectionModel):
    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 9000
    tls_cert: Path | None = None
    tls_key: Path | None = None
    default_site: TopicId = "home"
    chargers: dict[str, ChargerConfig] = Field(default_factory=dict)
    #: ``False``: unknown charge point ids are refused at the handshake. ``"pending"``: setup mode, they
    #: connect (on ``default_site``) and their BootNotification is answered Pending.
    allow_unknown: Literal[False, "pending"] = False
    #: When true, a charger without a ``password_hash`` cannot connect at all.
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
    #: Offer permessage-deflate (RFC 7692) to chargers that ask for it. Off saves memory and CPU per charger
    #: (see docs/ocpp-gateway.md for the figures).
    websocket_compression: bool = True
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
        if self.require_password:
            missing = [cp for cp, c in self.chargers.items() if c.password_hash is None]
            if missing:
                raise ValueError(f"require_password is on but chargers have no password_hash: {missing[:5]}")
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
