"""SG-Ready: two relays that tell a heat pump or boiler what the grid wants.

=====  ========  ========  ==================================================
state  relay 1   relay 2   meaning
=====  ========  ========  ==================================================
1      on        off       blocked (utility lock)
2      off       off       normal operation
3      off       on        recommended on (surplus: heat more, to a higher target)
4      on        on        forced on
=====  ========  ========  ==================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from shared.config import SectionModel

from .relay import SwitchControl
from .switches import RelayConfig, make_relay

if TYPE_CHECKING:
    from .adapter import LoadAdapter

SgState = Literal[1, 2, 3, 4]
RELAYS: dict[int, tuple[bool, bool]] = {1: (True, False), 2: (False, False), 3: (False, True), 4: (True, True)}


class SgReadyConfig(SectionModel):
    relay1: RelayConfig
    relay2: RelayConfig
    #: The state while the setpoint allows running on surplus (3: recommended, 4: forced).
    on_state: Literal[3, 4] = 3
    #: The state otherwise (2: normal, 1: blocked — blocked is a utility lock, limited per day by the spec).
    off_state: Literal[1, 2] = 2
    #: The state when the setpoint cuts for safety (fuse, circuit, import limit, stale data): 1 blocks the
    #: device, which otherwise keeps drawing on its own in normal operation.
    safety_state: Literal[1, 2] = 1

    def state_for(self, allowed: bool, safety_cut: bool) -> int:
        if allowed:
            return self.on_state
        return self.safety_state if safety_cut else self.off_state


class SgReady:
    """The two relays, each kept at its part of the wanted state by a :class:`SwitchControl`."""

    def __init__(self, adapter: LoadAdapter[Any], config: SgReadyConfig) -> None:
        self.config = config
        self.relay1 = make_relay(adapter, config.relay1, "sg-ready relay 1")
        self.relay2 = make_relay(adapter, config.relay2, "sg-ready relay 2")
        self.controls = (SwitchControl(adapter, self.relay1), SwitchControl(adapter, self.relay2))
        self.wanted: int | None = None

    def command_topics(self) -> list[str]:
        return [*self.relay1.command_topics(), *self.relay2.command_topics()]

    def routes(self) -> None:
        self.relay1.routes()
        self.relay2.routes()

    def want(self, state: int) -> None:
        self.wanted = state
        first, second = RELAYS[state]
        self.controls[0].want(first, force=True)
        self.controls[1].want(second, force=True)

    @property
    def state(self) -> int | None:
        """The state the relays report (None while unknown)."""
        reported = (self.relay1.output, self.relay2.output)
        for state, relays in RELAYS.items():
            if relays == reported:
                return state
        return None

    async def reconcile(self) -> None:
        for control in self.controls:
            await control.reconcile()

    async def poll(self) -> None:
        await self.relay1.maybe_poll()
        await self.relay2.maybe_poll()


__all__ = ["RELAYS", "SgReady", "SgReadyConfig"]
