"""Phase switching through the real allocator service and a real broker: a Solar Only car that cannot start on
three phases at 2 kW is switched to one phase (a ``phase_switch`` pause first) and charges there; a restarted
allocator reads the phase count back from its retained setpoint and does not switch again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from services.allocator.service import running
from shared.config import AmpmqConfig
from shared.models import Phase, Reason, Setpoint
from shared.probe import Probe, Received
from shared.topics import Topics

from .conftest import FAST_TIMERS, evse, measurement
from .test_grid_limit import _feed

#: A site exporting 2 kW evenly (no load drawing): 8.7 leg-amps, short of 3 × 6 A.
EXPORT = -2000.0 / 230.0 / 3


def sp(msg: Received) -> Setpoint:
    return msg.model(Setpoint)


async def test_a_solar_only_car_switches_to_one_phase_and_keeps_it_across_a_restart(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    car = evse(site_id, "car").model_copy(update={"phase_switching": True})
    await watch.publish(topics.load_state(site_id, "car"), car, retain=True)
    meter = asyncio.create_task(_feed(watch, topics.measurement(site_id), measurement(site_id, EXPORT)))
    timers = {**FAST_TIMERS, "phase_switch_pause": 1.0}
    config = make_config(sites={site_id: {"timers": timers}})
    try:
        async with running(config):
            await watch.publish(topics.load_settings_set(site_id, "car"), {"mode": "solar_only", "phases": "auto"})
            switch = sp(await watch.expect(topics.setpoint(site_id, "car"), timeout=10,
                                           where=lambda m: sp(m).reason is Reason.PHASE_SWITCH))
            assert (switch.current, switch.phases, switch.phase_count) == (0.0, [Phase.A], 1)
            assert "from 3 phases to 1 phase" in switch.message
            charging = sp(await watch.expect(topics.setpoint(site_id, "car"), timeout=10,
                                             where=lambda m: sp(m).current > 0))
            assert charging.phases == [Phase.A] and charging.phase_count == 1
            assert charging.current == pytest.approx(2000.0 / 230.0, abs=0.05)
        mark = watch.mark()
        async with running(config):  # memory read back from the retained setpoint: no second switch
            again = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=10,
                                          where=lambda m: sp(m).current > 0))
            assert again.phases == [Phase.A] and again.phase_count == 1
            assert again.current == pytest.approx(2000.0 / 230.0, abs=0.05), again.message
            after = [sp(m) for m in watch.messages[mark:] if m.topic == topics.setpoint(site_id, "car")]
            assert all(s.reason is not Reason.PHASE_SWITCH for s in after)
    finally:
        meter.cancel()
