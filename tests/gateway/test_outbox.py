"""The outbox: ordered, bounded, and retained state coalesced while it waits."""

from __future__ import annotations

import asyncio
import contextlib

from services.ocpp_gateway.outbox import Outbox
from shared.mqtt import Runtime, serving
from shared.probe import Probe
from shared.topics import Topics


async def test_state_is_coalesced_events_are_not(mqtt_url: str, probe: Probe, site_id: str, topics: Topics) -> None:
    await probe.subscribe(topics.site_all(site_id))
    state, event = topics.charger_heartbeat(site_id, "cp"), topics.charger_event(site_id, "cp", "tick")
    async with serving(Runtime("ocpp-gateway-outbox-test", mqtt_url, topics)) as runtime:
        outbox = Outbox(runtime, size=100)
        for i in range(50):  # queued before the worker runs: state collapses, events stay one by one
            await outbox.put(state, str(i), retain=True)
            await outbox.put(event, str(i))
        assert outbox.coalesced == 49 and outbox.pending == 51
        worker = asyncio.get_running_loop().create_task(outbox.run())
        try:
            await outbox.drain()
            await probe.expect(state, where=lambda m: m.text == "49")
            await probe.expect(event, where=lambda m: m.text == "49")
            assert [m.text for m in probe.on(event)] == [str(i) for i in range(50)]
            assert [m.text for m in probe.on(state)] == ["49"]
            # a full queue refuses without waiting when asked not to wait, and counts the drop
            small = Outbox(runtime, size=1)
            assert small.put_nowait(event, "a") and not small.put_nowait(event, "b")
            assert small.dropped == 1
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
