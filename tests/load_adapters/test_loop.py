"""The adapter's loop: a setpoint that arrives while the loop is busy applying the one before is applied as
soon as that one is through, not a tick later."""

from __future__ import annotations

import asyncio

from services.load_adapters.adapter import SERVICE, LoadAdapter, LoadConfig
from shared.clock import SYSTEM_CLOCK
from shared.models import LoadKind, LoadState, LoadStatus, Setpoint
from shared.mqtt import Runtime, serving
from shared.probe import Probe
from shared.topics import Topics

from .conftest import setpoint


class SlowDevice(LoadAdapter[LoadConfig]):
    """A device whose first command takes until the test says so."""

    def __init__(self, config: LoadConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime, SYSTEM_CLOCK)
        self.applied: list[float] = []
        self.first_done = asyncio.Event()
        self.release = asyncio.Event()

    def routes(self) -> None:
        self.heard()

    def build_state(self) -> LoadState:
        return self.state(kind=LoadKind.SWITCH, status=LoadStatus.ACTIVE)

    async def apply(self, sp: Setpoint | None) -> None:
        if sp is None:
            return
        self.applied.append(sp.current)
        if len(self.applied) == 1:
            self.first_done.set()
            await self.release.wait()  # a command still on its way when the next setpoint comes


async def test_a_setpoint_arriving_during_a_step_is_applied_at_once(mqtt_url: str, probe: Probe, site_id: str) -> None:
    topics = Topics(f"loop-{site_id}")
    runtime = Runtime(SERVICE, mqtt_url, topics)
    config = LoadConfig(site=site_id, id="slow", tick=30.0, startup_grace=30.0, silent_after=3600.0)
    device = SlowDevice(config, runtime)
    device.attach()
    async with serving(runtime):
        task = asyncio.get_running_loop().create_task(device.run())
        try:
            await probe.publish(topics.setpoint(site_id, "slow"), setpoint(site_id, "slow", on=True, current=6.0))
            await asyncio.wait_for(device.first_done.wait(), 5)
            await probe.publish(topics.setpoint(site_id, "slow"), setpoint(site_id, "slow", on=True, current=10.0))
            for _ in range(100):  # the loop takes the new setpoint in while it is still in the first step
                if device.setpoint is not None and device.setpoint.current == 10.0:
                    break
                await asyncio.sleep(0.01)
            device.release.set()
            for _ in range(200):  # ...and applies it once that step is through (the tick is 30 s away)
                if device.applied == [6.0, 10.0]:
                    break
                await asyncio.sleep(0.01)
            assert device.applied == [6.0, 10.0]
        finally:
            device.stop()
            await asyncio.wait_for(task, 5)
