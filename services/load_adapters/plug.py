"""Smart plugs and switched loads: an on/off load behind one relay (Shelly, Tasmota or generic MQTT).

Its rated power is the rated power from the config, else the rolling mean of what the plug measured while on
(``power_window``), else ``max_current`` on every leg in use. The ``power`` it reports is what the plug
measures, else its draw times the voltage: a plug without a power reading still shows what it draws. The
setpoint's ``on`` is the wanted state; a setpoint past its ``valid_until`` (or none at all) gives
``fallback_on`` (default off).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.clock import Clock
from shared.models import LoadKind, LoadState, LoadStatus, Phase, Setpoint
from shared.mqtt import Runtime

from .adapter import SAFETY_REASONS, LoadAdapter, LoadConfig, NonNegativeSeconds, PositiveSeconds, RollingMean
from .mqtt_switch import MqttRelay, MqttRelayConfig
from .relay import RelayDriver, SwitchControl
from .shelly_plug import ShellyRelayConfig
from .switches import make_relay
from .tasmota_plug import TasmotaRelayConfig


class PlugOptions(LoadConfig):
    #: Rated power (W, over all legs in use). None: measured while on.
    rated_power: float | None = Field(default=None, gt=0.0, le=1_000_000.0)
    #: Per-leg current assumed while neither a rated nor a measured power is known.
    max_current: float = Field(default=16.0, gt=0.0, le=1000.0)
    #: The measured power is the mean over this window while on.
    power_window: PositiveSeconds = 60.0
    #: Readings below this (W) while on do not count as the load's power (standby).
    standby_power: float = Field(default=5.0, ge=0.0)
    min_on: NonNegativeSeconds = 0.0
    min_off: NonNegativeSeconds = 0.0
    #: The state without a valid setpoint.
    fallback_on: bool = False


class ShellyPlugConfig(PlugOptions, ShellyRelayConfig):
    type: Literal["shelly_plug"]


class TasmotaPlugConfig(PlugOptions, TasmotaRelayConfig):
    type: Literal["tasmota_plug"]


class MqttSwitchConfig(PlugOptions, MqttRelayConfig):
    type: Literal["mqtt_switch"]


PlugConfig = ShellyPlugConfig | TasmotaPlugConfig | MqttSwitchConfig


class PlugAdapter(LoadAdapter[PlugConfig]):
    """An on/off load: the setpoint's ``on`` drives the relay."""

    def __init__(self, config: PlugConfig, runtime: Runtime, clock: Clock) -> None:
        super().__init__(config, runtime, clock)
        self.relay: RelayDriver = make_relay(self, config, config.type)
        self.control = SwitchControl(self, self.relay, min_on=config.min_on, min_off=config.min_off)
        self.measured = RollingMean(config.power_window)
        #: The last mean measured while on, kept while the plug is off.
        self.known_power: float | None = None

    def routes(self) -> None:
        self.relay.routes()

    def device_topics(self) -> list[str]:
        return self.relay.command_topics()

    def device_update(self, source: object) -> None:
        relay = self.relay
        if relay.output and relay.power is not None and relay.power >= self.config.standby_power:
            self.measured.add(self.clock.monotonic(), relay.power)
            self.known_power = self.measured.mean
        self.wake()

    @property
    def rated_power(self) -> float:
        if self.config.rated_power is not None:
            return self.config.rated_power
        if self.known_power is not None:
            return self.known_power
        return self.amps_to_watts(self.config.max_current)

    def build_state(self) -> LoadState:
        relay = self.relay
        rated = self.rated_power
        if relay.output is None:
            draw = {}
        elif not relay.output:
            draw = self.draw_from_current(0.0)
        elif relay.current is not None and len(self.config.phases) == 1:
            draw = self.draw_from_current(relay.current)
        elif relay.power is not None:
            draw = self.draw_from_current(self.watts_to_amps(relay.power))
        else:
            draw = self.draw_from_current(self.watts_to_amps(rated))
        return self.state(
            kind=LoadKind.ONOFF,
            rated_power=round(rated, 1),
            max_current=round(self.watts_to_amps(rated), 3),
            draw={phase: round(amps, 3) for phase, amps in draw.items()},
            power=self._power(draw),
            energy=relay.energy_wh,
            status=LoadStatus.ACTIVE,
            details={
                "output": relay.output,
                "wanted": self.control.desired,
                "hold_s": round(self.control.hold_remaining(), 1),
                "power_source": "rated" if self.config.rated_power is not None
                else ("measured" if self.known_power is not None else "max_current"),
            },
        )

    def _power(self, draw: dict[Phase, float]) -> float | None:
        """What the plug draws now (W): its own power reading, else its draw (measured current, or the
        rated power while on) times the voltage; None only while the relay's state is unknown."""
        if self.relay.power is not None:
            return round(max(0.0, self.relay.power), 1)
        if not draw:
            return None
        return round(sum(draw.values()) * self.config.voltage, 1)

    async def apply(self, setpoint: Setpoint | None) -> None:
        if setpoint is None:
            self.control.want(self.config.fallback_on, force=True)
        else:
            self.control.want(setpoint.on, force=setpoint.reason in SAFETY_REASONS)
        await self.control.reconcile()

    async def tick(self) -> None:
        self.measured.trim(self.clock.monotonic())
        if isinstance(self.relay, MqttRelay) and not self.relay.hears_anything:
            self.heard()  # a fire-and-forget switch never says anything: it is as alive as the broker
        await self.relay.maybe_poll()
        await self.control.reconcile()


__all__ = ["MqttSwitchConfig", "PlugAdapter", "PlugConfig", "PlugOptions", "ShellyPlugConfig", "TasmotaPlugConfig"]
