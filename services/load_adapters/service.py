"""The load adapters service: one adapter per configured load, all on one MQTT connection.

Config (``load_adapters`` section)::

    load_adapters:
      loads:
        - {type: shelly_plug, site: home, id: dishwasher, prefix: shellyplusplugs-a8032ab12345, rated_power: 2000}
        - {type: tasmota_plug, site: home, id: heater, topic: heater-plug}
        - {type: ocpp_charger, site: home, id: carport, charger: cp-1, connector: 1, max_current: 16}
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from pydantic import Field, model_validator

from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import AmpmqConfig, SectionModel
from shared.mqtt import Runtime
from shared.topics import Topics

from .adapter import SERVICE, LoadAdapter
from .metrics import LoadAdaptersCollector
from .ocpp_charger import OcppChargerConfig, profile_collisions
from .registry import LoadConfigAny, make_adapter


class LoadAdaptersConfig(SectionModel):
    """The ``load_adapters`` config section: the loads to serve."""

    loads: list[Annotated[LoadConfigAny, Field(discriminator="type")]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> LoadAdaptersConfig:
        seen: set[tuple[str, str]] = set()
        for load in self.loads:
            key = (load.site, load.id)
            if key in seen:
                raise ValueError(f"load {load.site}/{load.id} is configured twice")
            seen.add(key)
        collisions = profile_collisions([load for load in self.loads if isinstance(load, OcppChargerConfig)])
        if collisions:
            raise ValueError("; ".join(collisions))
        return self


class LoadAdapters:
    """Every configured adapter on one runtime."""

    def __init__(self, config: LoadAdaptersConfig, runtime: Runtime, clock: Clock = SYSTEM_CLOCK) -> None:
        self.runtime = runtime
        self.clock = clock
        self.adapters: list[LoadAdapter[Any]] = [make_adapter(load, runtime, clock) for load in config.loads]
        for adapter in self.adapters:
            adapter.attach()
        runtime.metrics.register(LoadAdaptersCollector(self.adapters))
        runtime.on_connect(self._connected)
        self._tasks: list[asyncio.Task[None]] = []

    def adapter(self, site: str, load: str) -> LoadAdapter[Any]:
        for adapter in self.adapters:
            if adapter.site == site and adapter.load == load:
                return adapter
        raise KeyError(f"{site}/{load}")

    async def _connected(self) -> None:
        for adapter in self.adapters:
            if not self._tasks:
                adapter.start()
            adapter.reconnected()
            await adapter.on_connect()
        if not self._tasks:
            self._tasks = [asyncio.get_running_loop().create_task(a.run(), name=f"load-{a.site}-{a.load}")
                           for a in self.adapters]

    async def stop(self) -> None:
        for adapter in self.adapters:
            adapter.stop()
        pending = {task for task in self._tasks if not task.done()}
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        self._tasks = []


async def serve(config: AmpmqConfig, clock: Clock = SYSTEM_CLOCK) -> None:
    section = config.section("load_adapters", LoadAdaptersConfig)
    runtime = Runtime(SERVICE, config.broker(), Topics(config.root))
    adapters = LoadAdapters(section, runtime, clock)
    try:
        await runtime.run()
    finally:
        await adapters.stop()


__all__ = ["LoadAdapters", "LoadAdaptersConfig", "serve"]
