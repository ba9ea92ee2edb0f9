"""Grid-operator limits through the real allocator service and a real broker (issue 18): a ``grid-limit/set``
dims the car within one decision with reason ``grid_operator_limit``; the limit ends at its ``valid_until``; a
required source that goes silent brings the fallback; a relay contact maps to the §14a preset; a restarted
allocator keeps the limit it published."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from services.allocator.config import AllocatorConfig
from services.allocator.service import running
from shared.config import AmpmqConfig, ConfigError
from shared.models import ErrorReport, GridLimitOrigin, GridLimitSet, GridLimitState, Reason, Setpoint
from shared.probe import Probe, Received
from shared.topics import Topics

from .conftest import FAST_TIMERS, evse, measurement, now

GOL = Reason.GRID_OPERATOR_LIMIT
#: 4 200 W on three phases at 230 V, per leg.
DIMMED = 4200.0 / (3 * 230.0)


def sp(msg: Received) -> Setpoint:
    return msg.model(Setpoint)


def gl(msg: Received) -> GridLimitState:
    return msg.model(GridLimitState)


async def _feed(watch: Probe, topic: str, payload: object, every: float = 0.1) -> None:
    """A live source: the same payload again and again."""
    while True:
        await watch.publish(topic, payload)  # type: ignore[arg-type]
        await asyncio.sleep(every)


async def _site(watch: Probe, topics: Topics, site: str) -> asyncio.Task[None]:
    """A car that could take 16 A and a live meter with a quiet house (2 A per phase)."""
    await watch.publish(topics.load_state(site, "car"), evse(site, "car"), retain=True)
    return asyncio.create_task(_feed(watch, topics.measurement(site), measurement(site, 2.0)))


async def test_a_grid_limit_dims_the_car_at_once_and_ends_when_it_expires(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    meter = await _site(watch, topics, site_id)
    try:
        async with running(make_config(sites={site_id: {"timers": FAST_TIMERS}})):
            full = sp(await watch.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 16.0))
            assert full.reason is Reason.OK
            # a bad signal is refused and reported; nothing changes
            mark = watch.mark()
            await watch.publish(topics.grid_limit_set(site_id), '{"controllable_cap_w": -1}')
            await watch.expect(topics.errors(site_id), after=mark, where=lambda m: m.json()["topic"].endswith("/set"))
            # the operator dims every controllable load to 4.2 kW, for 2 s
            mark = watch.mark()
            until = now() + timedelta(seconds=2.0)
            await watch.publish(topics.grid_limit_set(site_id), GridLimitSet(controllable_cap_w=4200.0,
                                                                             valid_until=until, source="box"))
            dimmed = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                           where=lambda m: sp(m).current < 16.0))
            assert dimmed.reason is GOL and dimmed.current == pytest.approx(DIMMED, abs=0.01)
            state = gl(await watch.expect(topics.grid_limit(site_id), after=mark, where=lambda m: gl(m).in_force))
            assert (state.origin, state.source, state.controllable_cap_w, state.binding) == (
                GridLimitOrigin.SIGNAL, "box", 4200.0, ["car"])
            assert state.valid_until == until
            # expiry (judged on the allocator's clock, noticed by the next refresh): back to normal
            back = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=10,
                                         where=lambda m: sp(m).current == 16.0))
            assert back.reason is Reason.OK
            ended = gl(await watch.expect(topics.grid_limit(site_id), after=mark,
                                          where=lambda m: not gl(m).in_force))
            assert "expired" in ended.why and ended.binding == []
    finally:
        meter.cancel()


async def test_a_required_source_that_goes_silent_brings_the_fallback(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    policy = {"required": True, "signal_timeout": 1.0, "fallback": {"controllable_cap_w": 4200.0}}
    meter = await _site(watch, topics, site_id)
    heartbeat: asyncio.Task[None] | None = None
    try:
        async with running(make_config(sites={site_id: {"timers": FAST_TIMERS}}, grid_limits={site_id: policy})):
            # never heard: the safe fallback from the first decision on (once the meter's data is fresh)
            first = sp(await watch.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current > 0))
            assert first.reason is GOL and first.current == pytest.approx(DIMMED, abs=0.01)
            state = gl(await watch.expect(topics.grid_limit(site_id)))
            assert state.origin is GridLimitOrigin.FALLBACK and "never heard" in state.why
            # the source speaks (no limit) every 0.2 s: the car charges fully
            mark = watch.mark()
            heartbeat = asyncio.create_task(_feed(watch, topics.grid_limit_set(site_id), '{"source": "box"}', 0.2))
            free = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                         where=lambda m: sp(m).current == 16.0))
            assert free.reason is Reason.OK
            # the source goes silent: after the 1 s timeout, the fallback again
            heartbeat.cancel()
            mark = watch.mark()
            fallen = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark, timeout=10,
                                           where=lambda m: sp(m).reason is GOL))
            assert fallen.current == pytest.approx(DIMMED, abs=0.01)
            state = gl(await watch.expect(topics.grid_limit(site_id), after=mark,
                                          where=lambda m: gl(m).origin is GridLimitOrigin.FALLBACK))
            assert "silent for" in state.why and state.heard is not None
    finally:
        meter.cancel()
        if heartbeat is not None:
            heartbeat.cancel()


async def test_a_relay_contact_applies_the_section_14a_preset(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    relay = f"dev-{site_id}/input/0"  # a Shelly Gen1 input: "1" closed, "0" open
    policy = {"relay": {"topic": relay, "source": "steuerbox"}}
    meter = await _site(watch, topics, site_id)
    try:
        async with running(make_config(sites={site_id: {"timers": FAST_TIMERS}}, grid_limits={site_id: policy})):
            await watch.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 16.0)
            mark = watch.mark()
            await watch.publish(relay, "1")
            dimmed = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                           where=lambda m: sp(m).reason is GOL))
            assert dimmed.current == pytest.approx(DIMMED, abs=0.01)
            state = gl(await watch.expect(topics.grid_limit(site_id), after=mark, where=lambda m: gl(m).in_force))
            assert (state.source, state.controllable_cap_w) == ("steuerbox", 4200.0)
            mark = watch.mark()
            await watch.publish(relay, "maybe")
            report = (await watch.expect(topics.errors(site_id), after=mark)).model(ErrorReport)
            assert report.error == "bad_relay_state" and "neither" in report.message
            await watch.publish(relay, "0")
            back = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                         where=lambda m: sp(m).current == 16.0))
            assert back.reason is Reason.OK
    finally:
        meter.cancel()


async def test_a_restarted_allocator_keeps_the_limit_it_published(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    meter = await _site(watch, topics, site_id)
    try:
        async with running(config):
            await watch.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).current == 16.0)
            await watch.publish(topics.grid_limit_set(site_id), GridLimitSet(import_limit_w=6900.0, source="ems"))
            # 6.9 kW import, the house 2 A per phase: 30 - 6 = 24 leg-amps, 8 A per leg
            await watch.expect(topics.setpoint(site_id, "car"), where=lambda m: sp(m).reason is GOL)
            await watch.expect(topics.grid_limit(site_id), where=lambda m: gl(m).in_force)
        mark = watch.mark()
        async with running(config):
            again = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                          where=lambda m: sp(m).current > 0))
            assert again.reason is GOL and again.current == pytest.approx(8.0, abs=0.01)
    finally:
        meter.cancel()


def test_a_grid_limit_policy_for_an_unconfigured_site_is_a_config_error(
    make_config: Callable[..., AmpmqConfig], site_id: str
) -> None:
    config = make_config(sites={site_id: {}}, grid_limits={"elsewhere": {"required": False}})
    with pytest.raises(ConfigError, match="grid_limits names site 'elsewhere'"):
        config.section("allocator", AllocatorConfig)
    config = make_config(sites={site_id: {}}, grid_limits={site_id: {"required": True}})
    with pytest.raises(ConfigError, match="needs a fallback"):
        config.section("allocator", AllocatorConfig)
