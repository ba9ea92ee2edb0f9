"""The grid operator's signal as the allocator hears it: the ``<site>/grid-limit/set`` command, a relay
contact mapped to a preset, and the site's policy for silence (``allocator.grid_limits`` in the config).

    allocator:
      grid_limits:
        home:
          required: true            # the source must be heard every signal_timeout, else the fallback applies
          signal_timeout: 900.0     # s, on the allocator's clock
          fallback: {controllable_cap_w: 4200.0}
          relay:                    # optional: a contact (Shelly input, control box relay) read over MQTT
            topic: shellies/steuerbox/input/0
            payload_on: "1"         # contact closed: the preset applies
            payload_off: "0"        # contact open: no limit
            limit: {controllable_cap_w: 4200.0}

Every message on the relay topic (on or off) and every ``/set`` is a heartbeat of the source. The last one
wins, whichever way it came. The limit itself is decided in the core (:mod:`.core.external_limit`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from shared.config import SectionModel
from shared.models.grid_limit import (
    GridLimitInput,
    GridLimitOrigin,
    GridLimitSet,
    GridLimitSignal,
    GridLimitState,
    GridLimitValues,
)
from shared.payload import PayloadError, parse_json

#: Germany's §14a EnWG: a controllable load may be dimmed to no less than 4.2 kW.
SECTION_14A = GridLimitValues(controllable_cap_w=4200.0)


class RelayInputConfig(SectionModel):
    """A contact read over MQTT (plain payloads, or a field of a JSON payload, like the load adapters'
    ``mqtt`` switch): closed applies ``limit``, open ends it."""

    topic: str
    #: JSON field (dotted path) holding the contact's state; None: the payload itself. A JSON boolean counts.
    field: str | None = None
    payload_on: str = "1"
    payload_off: str = "0"
    limit: GridLimitValues = SECTION_14A
    #: The name the state shows as the source.
    source: Annotated[str, Field(max_length=64)] = "relay"

    @field_validator("topic")
    @classmethod
    def _plain_topic(cls, value: str) -> str:
        if not value or "+" in value or "#" in value or value.startswith("/") or value.endswith("/"):
            raise ValueError(f"relay topic {value!r} must be a plain topic (no wildcards, no leading/trailing '/')")
        return value


class GridLimitConfig(SectionModel):
    """A site's grid-operator input: whether the source must be heard, how often, and what applies if not."""

    required: bool = False
    signal_timeout: Annotated[float, Field(gt=0.0, le=86_400.0)] = 900.0
    fallback: GridLimitValues | None = None
    relay: RelayInputConfig | None = None

    @model_validator(mode="after")
    def _fallback_when_required(self) -> GridLimitConfig:
        if self.required and self.fallback is None:
            raise ValueError("a required grid-limit source needs a fallback (e.g. {controllable_cap_w: 4200.0})")
        return self


def from_command(command: GridLimitSet, now: datetime) -> GridLimitSignal:
    """The signal a ``/set`` carries, heard ``now``."""
    return GridLimitSignal(values=command.values, valid_until=command.valid_until, source=command.source, heard=now)


def from_relay(relay: RelayInputConfig, payload: bytes, now: datetime) -> GridLimitSignal:
    """The signal a contact's state carries; ``ValueError`` when the payload is neither on nor off."""
    text: Any = payload.decode("utf-8", "replace").strip()
    if relay.field:
        try:
            text = parse_json(text)
            for key in relay.field.split("."):
                text = text[key]
        except (PayloadError, KeyError, TypeError, IndexError):
            raise ValueError(f"no field {relay.field!r} in the contact's state") from None
    if isinstance(text, bool):
        closed = text
    elif str(text) == relay.payload_on:
        closed = True
    elif str(text) == relay.payload_off:
        closed = False
    else:
        raise ValueError(f"contact state {str(text)[:40]!r} is neither {relay.payload_on!r} nor {relay.payload_off!r}")
    values = relay.limit if closed else GridLimitValues()
    return GridLimitSignal(values=values, source=relay.source, heard=now)


def restored(state: GridLimitState) -> GridLimitSignal | None:
    """The signal a retained state of ours was made from (after a restart, or for another instance)."""
    if state.heard is None:
        return None
    if state.origin is not GridLimitOrigin.SIGNAL:
        # No limit, or the fallback: the source's last word was no limit (the heartbeat still counts).
        return GridLimitSignal(source=state.source or "mqtt", heard=state.heard)
    values = GridLimitValues(import_limit_w=state.import_limit_w, controllable_cap_w=state.controllable_cap_w,
                             load_cap_w=state.load_cap_w)
    return GridLimitSignal(values=values, valid_until=state.valid_until, source=state.source or "mqtt",
                           heard=state.heard)


def decision_input(config: GridLimitConfig | None, signal: GridLimitSignal | None) -> GridLimitInput | None:
    """The snapshot's grid-operator input (None for a site with no policy that never heard a signal)."""
    if config is None:
        return None if signal is None else GridLimitInput(signal=signal)
    return GridLimitInput(signal=signal, required=config.required, signal_timeout=config.signal_timeout,
                          fallback=config.fallback)
