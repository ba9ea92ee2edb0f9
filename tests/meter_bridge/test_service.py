"""The service entry point (as ``ampmq run`` calls it), and the coalescing publisher."""

from __future__ import annotations

import asyncio

from services.meter_bridge.publisher import CoalescingPublisher
from services.meter_bridge.service import serve
from shared.clock import SYSTEM_CLOCK
from shared.config import AmpmqConfig
from shared.probe import Probe

from .conftest import TOPICS, currents, payload, stop


async def test_serve_reads_its_section_publishes_and_says_offline_on_stop(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.service_availability("meter-bridge"))
    await probe.subscribe(TOPICS.meter_availability(site_id, "grid"))
    prefix = f"shellypro3em-{site_id}"
    config = AmpmqConfig(mqtt_url=mqtt_url, meter_bridge={"sites": {site_id: {"sources": [
        {"id": "grid", "driver": "shelly", "prefix": prefix}]}}})
    task = asyncio.get_running_loop().create_task(serve(config))
    try:
        await probe.expect(TOPICS.service_availability("meter-bridge"), where=lambda m: m.text == "online")
        for _ in range(50):  # until the service has subscribed: re-send, as a meter does every second
            await probe.publish(f"{prefix}/status/em:0", payload({"a_current": 9.0, "a_act_power": 2070.0}))
            if probe.on(TOPICS.measurement(site_id)):
                break
            await asyncio.sleep(0.1)
        msg = await probe.expect(TOPICS.measurement(site_id))
        assert currents(msg) == {"A": 9.0}
        await probe.expect(TOPICS.meter_availability(site_id, "grid"), where=lambda m: m.text == "online")
    finally:
        mark = probe.mark()
        await stop(task)
    await probe.expect(TOPICS.meter_availability(site_id, "grid"), after=mark, where=lambda m: m.text == "offline")


async def test_coalescing_publishes_the_first_at_once_and_folds_the_rest() -> None:
    published: list[int] = []
    state = {"value": 0}
    tasks: list[asyncio.Task[None]] = []

    async def publish() -> None:
        published.append(state["value"])

    def spawn(coro: object) -> None:
        tasks.append(asyncio.get_running_loop().create_task(coro))  # type: ignore[arg-type]

    coalescer = CoalescingPublisher(0.05, SYSTEM_CLOCK, publish, spawn)
    state["value"] = 1
    await coalescer.request()
    assert published == [1]  # the first request is not delayed
    for value in range(2, 20):
        state["value"] = value
        await coalescer.request()
    assert published == [1] and len(tasks) == 1  # folded into one pending publish
    await asyncio.gather(*tasks)
    assert published == [1, 19]  # which carries the latest state
