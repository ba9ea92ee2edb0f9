"""Heat pumps and HVAC as loads: they run on their own; ampmq only tells them when there is surplus.

* ``sg_ready`` — two SG-Ready relays: ``on_state`` (3: recommended on) while the setpoint allows,
  ``off_state`` (2: normal) otherwise, ``safety_state`` (1: blocked) when the setpoint cuts for safety.
* ``thermostat`` — the target temperature, raised by ``boost_offset`` while the setpoint allows and held
  inside the comfort band [``comfort_min``, ``comfort_max``]; ``base_temperature`` otherwise, ``comfort_min``
  when the setpoint cuts for safety.

Minimum cycle times: once boosted it stays boosted for ``min_on`` (unless the cut is for safety), once
back to normal it waits ``min_off`` before boosting again. Without a valid setpoint: normal operation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.clock import Clock
from shared.config import SectionModel
from shared.models import LoadKind, LoadState, LoadStatus, Setpoint
from shared.mqtt import RawIncoming, Runtime

from .adapter import SAFETY_REASONS, LoadAdapter, LoadConfig, NonNegativeSeconds, ValueConfig
from .sg_ready import SgReady, SgReadyConfig
from .value_command import ValueCommand, ValueCommandConfig


class ThermostatConfig(SectionModel):
    target: ValueCommandConfig
    base_temperature: float = Field(default=21.0, ge=-30.0, le=80.0)
    boost_offset: float = Field(default=2.0, ge=-30.0, le=30.0)
    comfort_min: float = Field(default=19.0, ge=-30.0, le=80.0)
    comfort_max: float = Field(default=23.0, ge=-30.0, le=80.0)

    @model_validator(mode="after")
    def _band(self) -> ThermostatConfig:
        if not self.comfort_min <= self.base_temperature <= self.comfort_max:
            raise ValueError("base_temperature must lie within [comfort_min, comfort_max]")
        return self

    def boosted(self) -> float:
        return min(self.comfort_max, max(self.comfort_min, self.base_temperature + self.boost_offset))


class HeatPumpConfig(LoadConfig):
    type: Literal["heat_pump"]
    control: Literal["sg_ready", "thermostat"]
    sg_ready: SgReadyConfig | None = None
    thermostat: ThermostatConfig | None = None
    rated_power: float = Field(gt=0.0, le=1_000_000.0)
    power: ValueConfig | None = None
    min_on: NonNegativeSeconds = 300.0
    min_off: NonNegativeSeconds = 300.0

    @model_validator(mode="after")
    def _control_complete(self) -> HeatPumpConfig:
        if getattr(self, self.control) is None:
            raise ValueError(f"control {self.control!r} needs its {self.control} section")
        return self


class HeatPumpAdapter(LoadAdapter[HeatPumpConfig]):
    def __init__(self, config: HeatPumpConfig, runtime: Runtime, clock: Clock) -> None:
        super().__init__(config, runtime, clock)
        self.sg = SgReady(self, config.sg_ready) if config.control == "sg_ready" and config.sg_ready else None
        self.target = (ValueCommand(self, config.thermostat.target, "thermostat target")
                       if config.control == "thermostat" and config.thermostat else None)
        self.boost = False
        self.changed_at: float | None = None
        self.measured_power: float | None = None

    def device_topics(self) -> list[str]:
        topics = self.sg.command_topics() if self.sg is not None else []
        return topics + ([self.target.command_topic] if self.target is not None else [])

    def routes(self) -> None:
        if self.sg is not None:
            self.sg.routes()
        if self.target is not None:
            self.target.routes()
        if self.config.power is not None:
            self.runtime.raw_route(self.config.power.topic)(self._on_power)

    async def _on_power(self, msg: RawIncoming) -> None:
        assert self.config.power is not None
        power = await self.read_number(self.config.power, msg, "power")
        if power is None:
            return
        self.measured_power = max(0.0, power)
        if self.target is not None and self.target.config.state is None:
            self.heard()
        self.wake()

    def hold_remaining(self, want: bool, force: bool) -> float:
        if want == self.boost or self.changed_at is None:
            return 0.0
        elapsed = self.clock.monotonic() - self.changed_at
        if want:
            return max(0.0, self.config.min_off - elapsed)
        return 0.0 if force else max(0.0, self.config.min_on - elapsed)

    async def apply(self, setpoint: Setpoint | None) -> None:
        await self._drive()

    async def _drive(self) -> None:
        setpoint = None if self.setpoint_expired else self.setpoint
        want = setpoint is not None and (setpoint.on or setpoint.current > 0)
        force = setpoint is None or setpoint.reason in SAFETY_REASONS
        if want != self.boost and self.hold_remaining(want, force) <= 0:
            self.boost = want
            self.changed_at = self.clock.monotonic()
        safety_cut = setpoint is not None and setpoint.reason in SAFETY_REASONS and not self.boost
        if self.sg is not None:
            self.sg.want(self.sg.config.state_for(self.boost, safety_cut))
            await self.sg.reconcile()
        if self.target is not None and self.config.thermostat is not None:
            t = self.config.thermostat
            # A safety cut lowers the target to the bottom of the comfort band: the least heating allowed.
            self.target.want(t.boosted() if self.boost else t.comfort_min if safety_cut else t.base_temperature)
            await self.target.reconcile()

    async def tick(self) -> None:
        if self.sg is not None:
            await self.sg.poll()
        if self.target is not None and self.target.config.state is None and self.config.power is None:
            self.heard()  # nothing to hear from: as alive as the broker link
        await self._drive()

    def build_state(self) -> LoadState:
        c = self.config
        power = self.measured_power
        draw = self.draw_from_current(self.watts_to_amps(power)) if power is not None else {}
        return self.state(
            kind=LoadKind.ONOFF,
            rated_power=c.rated_power,
            max_current=round(self.watts_to_amps(c.rated_power), 3),
            draw={phase: round(a, 3) for phase, a in draw.items()},
            power=power,
            status=LoadStatus.ACTIVE,
            details={
                "control": c.control,
                "boost": self.boost,
                "hold_s": round(self.hold_remaining(not self.boost, False), 1),
                "sg_ready_state": self.sg.state if self.sg is not None else None,
                "target": self.target.sent if self.target is not None else None,
            },
        )


__all__ = ["HeatPumpAdapter", "HeatPumpConfig", "ThermostatConfig"]
