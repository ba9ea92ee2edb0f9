"""Boilers (thermal storage) as loads.

The tank temperature comes from any topic (:class:`ValueConfig`). Below ``min_temp`` the load is
``must_run`` (whatever the mode: the allocator gives it power first, within the fuse) until it is
``hysteresis`` above it again; at ``max_temp`` it is ``idle`` (tank full) and the heater is switched off
whatever the setpoint says, until it cooled ``hysteresis`` below. Control:

* ``onoff`` — one relay; the setpoint's ``on`` (or a current above 0) switches it.
* ``stepped`` — stages switched cumulatively (stage 1, stages 1+2, ...): the setpoint's current picks
  the highest step it covers; the load state lists the per-leg current of each step.
* ``continuous`` — a % power command (:class:`ValueCommand`) between ``min_power`` and ``max_power``.
* ``sg_ready`` — two SG-Ready relays: ``on_state`` while the setpoint allows, ``off_state`` otherwise; the
  boiler's own thermostat does the rest.

Without a valid setpoint the boiler is off (SG-Ready: its off state) — the safe state.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.clock import Clock
from shared.config import SectionModel
from shared.models import LoadKind, LoadState, LoadStatus, Setpoint
from shared.mqtt import RawIncoming, Runtime

from .adapter import (
    SAFETY_REASONS,
    LoadAdapter,
    LoadConfig,
    NonNegativeSeconds,
    PositiveSeconds,
    ValueConfig,
)
from .relay import RelayDriver, SwitchControl
from .sg_ready import SgReady, SgReadyConfig
from .switches import RelayConfig, make_relay
from .value_command import ValueCommand, ValueCommandConfig


class StageConfig(SectionModel):
    relay: RelayConfig
    #: What this stage adds (W, over the legs in use).
    power: float = Field(gt=0.0, le=1_000_000.0)


class BoilerConfig(LoadConfig):
    type: Literal["boiler"]
    temperature: ValueConfig
    min_temp: float = Field(default=45.0, ge=-50.0, le=150.0)
    max_temp: float = Field(default=65.0, ge=-50.0, le=150.0)
    hysteresis: float = Field(default=2.0, ge=0.0, le=30.0)
    #: A temperature older than this is unknown (no must_run, no idle).
    temperature_stale_after: PositiveSeconds = 900.0
    control: Literal["onoff", "stepped", "continuous", "sg_ready"] = "onoff"
    relay: RelayConfig | None = None
    rated_power: float | None = Field(default=None, gt=0.0, le=1_000_000.0)
    stages: list[StageConfig] = Field(default_factory=list, max_length=16)
    power_command: ValueCommandConfig | None = None
    min_power: float = Field(default=0.0, ge=0.0)
    max_power: float | None = Field(default=None, gt=0.0, le=1_000_000.0)
    sg_ready: SgReadyConfig | None = None
    #: Measured power (optional): the draw is computed from the control state without it.
    power: ValueConfig | None = None
    min_on: NonNegativeSeconds = 0.0
    min_off: NonNegativeSeconds = 0.0

    @model_validator(mode="after")
    def _control_complete(self) -> BoilerConfig:
        if self.max_temp <= self.min_temp:
            raise ValueError("max_temp must be above min_temp")
        needs = {
            "onoff": ("relay", "rated_power"),
            "stepped": ("stages",),
            "continuous": ("power_command", "max_power"),
            "sg_ready": ("sg_ready", "rated_power"),
        }[self.control]
        missing = [name for name in needs if not getattr(self, name)]
        if missing:
            raise ValueError(f"control {self.control!r} needs {', '.join(missing)}")
        if self.max_power is not None and self.min_power > self.max_power:
            raise ValueError("min_power is above max_power")
        return self


class BoilerAdapter(LoadAdapter[BoilerConfig]):
    def __init__(self, config: BoilerConfig, runtime: Runtime, clock: Clock) -> None:
        super().__init__(config, runtime, clock)
        self.temperature: float | None = None
        self.temperature_at: float | None = None
        self.must_run = False
        self.hot = False
        self.measured_power: float | None = None
        self.relays: list[RelayDriver] = []
        self.controls: list[SwitchControl] = []
        self.percent: ValueCommand | None = None
        self.sg: SgReady | None = None
        self.stage = 0
        if config.control == "onoff" and config.relay is not None:
            self._add_relay(config.relay, "heater")
        elif config.control == "stepped":
            for n, stage in enumerate(config.stages, start=1):
                self._add_relay(stage.relay, f"stage {n}")
        elif config.control == "continuous" and config.power_command is not None:
            self.percent = ValueCommand(self, config.power_command, "power command")
        elif config.sg_ready is not None:
            self.sg = SgReady(self, config.sg_ready)

    def _add_relay(self, relay: RelayConfig, label: str) -> None:
        driver = make_relay(self, relay, label)
        self.relays.append(driver)
        self.controls.append(SwitchControl(self, driver, min_on=self.config.min_on, min_off=self.config.min_off))

    def device_topics(self) -> list[str]:
        topics = [topic for relay in self.relays for topic in relay.command_topics()]
        if self.percent is not None:
            topics.append(self.percent.command_topic)
        if self.sg is not None:
            topics += self.sg.command_topics()
        return topics

    # -- inputs ----------------------------------------------------------------------------------------
    def routes(self) -> None:
        c = self.config
        self.runtime.raw_route(c.temperature.topic)(self._on_temperature)
        if c.power is not None:
            self.runtime.raw_route(c.power.topic)(self._on_power)
        for relay in self.relays:
            relay.routes()
        if self.percent is not None:
            self.percent.routes()
        if self.sg is not None:
            self.sg.routes()

    async def _on_temperature(self, msg: RawIncoming) -> None:
        value = await self.read_number(self.config.temperature, msg, "temperature")
        if value is None:
            return
        if not -50.0 <= value <= 150.0:
            await self.report("device_payload", f"temperature {value:g} °C is out of range", msg.topic)
            return
        self.temperature = value
        self.temperature_at = self.clock.monotonic()
        self._update_latches()
        if self.control_silent_is_data:
            self.heard()
        self.wake()  # the loop drives the heater (off at once when the tank is full)

    async def _on_power(self, msg: RawIncoming) -> None:
        assert self.config.power is not None
        power = await self.read_number(self.config.power, msg, "power")
        if power is None:
            return
        self.measured_power = max(0.0, power)
        if self.control_silent_is_data:
            self.heard()
        self.wake()

    @property
    def control_silent_is_data(self) -> bool:
        """A % power command says nothing back: the boiler's readings are its sign of life."""
        return self.percent is not None and self.percent.config.state is None

    @property
    def temperature_known(self) -> bool:
        return (self.temperature_at is not None
                and self.clock.monotonic() - self.temperature_at <= self.config.temperature_stale_after)

    def _update_latches(self) -> None:
        c = self.config
        t = self.temperature
        if t is None or not self.temperature_known:
            self.must_run = False
            self.hot = False
            return
        if t < c.min_temp:
            self.must_run = True
        elif t >= c.min_temp + c.hysteresis:
            self.must_run = False
        if t >= c.max_temp:
            self.hot = True
        elif t <= c.max_temp - c.hysteresis:
            self.hot = False

    # -- steps and powers ------------------------------------------------------------------------------
    def step_powers(self) -> list[float]:
        """Cumulative power of each stage (W)."""
        total, steps = 0.0, []
        for stage in self.config.stages:
            total += stage.power
            steps.append(total)
        return steps

    def _stage_for(self, amps: float) -> int:
        stage = 0
        for n, watts in enumerate(self.step_powers(), start=1):
            if self.watts_to_amps(watts) <= amps + 1e-6:
                stage = n
        return stage

    # -- driving ---------------------------------------------------------------------------------------
    async def apply(self, setpoint: Setpoint | None) -> None:
        await self._drive()

    async def _drive(self) -> None:
        c = self.config
        setpoint = None if self.setpoint_expired else self.setpoint
        allowed_on = setpoint is not None and (setpoint.on or setpoint.current > 0) and not self.hot
        #: Off without waiting for the minimum on time: no setpoint, a safety cut, or the tank is full.
        force = setpoint is None or setpoint.reason in SAFETY_REASONS or self.hot
        if c.control == "onoff" or c.control == "sg_ready":
            if self.sg is not None:
                safety_cut = setpoint is not None and setpoint.reason in SAFETY_REASONS
                self.sg.want(self.sg.config.state_for(allowed_on, safety_cut))
                await self.sg.reconcile()
            elif self.controls:
                self.controls[0].want(allowed_on, force=force)
                await self.controls[0].reconcile()
        elif c.control == "stepped":
            self.stage = self._stage_for(setpoint.current) if setpoint is not None and not self.hot else 0
            for n, control in enumerate(self.controls, start=1):
                control.want(n <= self.stage, force=force)
                await control.reconcile()
        elif self.percent is not None and c.max_power is not None:
            watts = self.amps_to_watts(setpoint.current) if setpoint is not None and not self.hot else 0.0
            watts = min(watts, c.max_power)
            if watts < c.min_power:
                watts = 0.0
            self.percent.want(100.0 * watts / c.max_power)
            await self.percent.reconcile()

    async def tick(self) -> None:
        self._update_latches()
        for relay in self.relays:
            await relay.maybe_poll()
        if self.sg is not None:
            await self.sg.poll()
        await self._drive()

    # -- state -----------------------------------------------------------------------------------------
    def _commanded_power(self) -> float | None:
        c = self.config
        if c.control == "stepped":
            powers = [stage.power for stage, relay in zip(c.stages, self.relays, strict=True) if relay.output]
            if any(relay.output is None for relay in self.relays):
                return None
            return sum(powers)
        if c.control == "continuous":
            if self.percent is None or self.percent.sent is None or c.max_power is None:
                return None
            return c.max_power * self.percent.sent / 100.0
        if c.control == "onoff" and self.relays:
            out = self.relays[0].output
            return None if out is None else (c.rated_power or 0.0) if out else 0.0
        return None  # SG-Ready: the boiler decides itself

    def build_state(self) -> LoadState:
        c = self.config
        power = self.measured_power if self.measured_power is not None else self._commanded_power()
        draw = self.draw_from_current(self.watts_to_amps(power)) if power is not None else {}
        soc = None
        if self.temperature is not None and self.temperature_known:
            soc = round(min(100.0, max(0.0, 100.0 * (self.temperature - c.min_temp) / (c.max_temp - c.min_temp))), 1)
        fields: dict[str, object] = {}
        if c.control in ("onoff", "sg_ready"):
            fields = {"kind": LoadKind.ONOFF, "rated_power": c.rated_power,
                      "max_current": round(self.watts_to_amps(c.rated_power or 0.0), 3)}
        elif c.control == "stepped":
            steps = [round(self.watts_to_amps(w), 3) for w in self.step_powers()]
            fields = {"kind": LoadKind.STEPPED, "steps": steps, "min_current": steps[0], "max_current": steps[-1]}
        else:
            fields = {"kind": LoadKind.CONTINUOUS, "min_current": round(self.watts_to_amps(c.min_power), 3),
                      "max_current": round(self.watts_to_amps(c.max_power or 0.0), 3)}
        return self.state(
            **fields,
            draw={phase: round(a, 3) for phase, a in draw.items()},
            power=power,
            status=LoadStatus.IDLE if self.hot else LoadStatus.ACTIVE,
            must_run=self.must_run,
            soc=soc,
            details={
                "temperature": self.temperature if self.temperature_known else None,
                "min_temp": c.min_temp,
                "max_temp": c.max_temp,
                "control": c.control,
                "stage": self.stage if c.control == "stepped" else None,
                "percent": self.percent.sent if self.percent is not None else None,
                "sg_ready_state": self.sg.state if self.sg is not None else None,
            },
        )


__all__ = ["BoilerAdapter", "BoilerConfig", "StageConfig"]
