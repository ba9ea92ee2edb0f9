"""The adapter's loop: a setpoint that arrives while the loop is busy applying the one before is applied as
soon as that one is through, not a tick later."""

from __future__ import annotations

import asyncio
import time

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
        return self.state(kind=LoadKind.ONOFF, rated_power=1000.0, status=LoadStatus.ACTIVE)

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


class RecordingDevice(LoadAdapter[LoadConfig]):
    """A device that notes, in one list shared with its neighbours, each command it is given and each state
    built of it."""

    def __init__(self, config: LoadConfig, runtime: Runtime, order: list[str]) -> None:
        super().__init__(config, runtime, SYSTEM_CLOCK)
        self.order = order

    def routes(self) -> None:
        self.heard()

    def build_state(self) -> LoadState:
        self.order.append(f"state {self.load}")
        return self.state(kind=LoadKind.ONOFF, rated_power=1000.0, status=LoadStatus.ACTIVE)

    async def apply(self, sp: Setpoint | None) -> None:
        if sp is not None:
            self.order.append(f"command {self.load}")


async def test_a_sites_setpoints_read_together_send_every_command_before_any_state(
        mqtt_url: str, site_id: str) -> None:
    """A site's cut is a setpoint for each of its loads, read together. Every load sends its command before
    any of them goes on to build its state: the last load's cut does not wait for the others' bookkeeping."""
    topics = Topics(f"loop-{site_id}")
    runtime = Runtime(SERVICE, mqtt_url, topics)
    order: list[str] = []
    devices = [RecordingDevice(LoadConfig(site=site_id, id=load, tick=30.0, startup_grace=30.0, silent_after=3600.0),
                               runtime, order) for load in ("a", "b")]
    for device in devices:
        device.attach()
    async with serving(runtime), Probe(mqtt_url) as sender:
        tasks = [asyncio.get_running_loop().create_task(device.run()) for device in devices]
        try:
            while order.count("state a") + order.count("state b") < 2:  # both have started and said their state
                await asyncio.sleep(0.01)
            order.clear()
            for load in ("a", "b"):
                sender.send(topics.setpoint(site_id, load),
                            setpoint(site_id, load, on=True, current=6.0).model_dump_json())
            await asyncio.sleep(0)  # the sender writes as it sends; our loop now stays blocked
            time.sleep(0.3)  # both wait in our socket, and are read at once
            deadline = asyncio.get_running_loop().time() + 10
            while len(order) < 4 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            assert order[:2] == ["command a", "command b"], order
            assert sorted(order[2:4]) == ["state a", "state b"], order
        finally:
            for device in devices:
                device.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), 5)
