"""Departure plans in the allocator service against the real Mosquitto: prices and a plan in, the retained
plan out, the setpoint following the plan's slots, replanning on new prices, infeasible targets said at once,
a plan surviving a restart, and ``null`` clearing it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from services.allocator.service import running
from shared.config import AmpmqConfig
from shared.models import ErrorReport, LoadPlan, Mode, PriceForecast, PriceSlot, PvForecast, PvSlot, Reason, Setpoint
from shared.probe import Probe, Received
from shared.topics import Topics

from .conftest import FAST_TIMERS, evse, measurement, now


def prices(site: str, start: datetime, per_hour: list[float]) -> PriceForecast:
    return PriceForecast(site=site, slots=[
        PriceSlot(start=start + timedelta(hours=i), end=start + timedelta(hours=i + 1), price=p)
        for i, p in enumerate(per_hour)])


def plan_of(msg: Received) -> LoadPlan:
    return msg.model(LoadPlan)


def sp(msg: Received) -> Setpoint:
    return msg.model(Setpoint)


async def start_site(watch: Probe, topics: Topics, site: str, at: datetime) -> None:
    """A Solar Only car on a site with no surplus (so without a plan it gets nothing), a cheap hour now and
    dear ones after it."""
    car = evse(site, "car").model_copy(update={"energy": 1_000_000.0})
    await watch.publish(topics.load_state(site, "car"), car, retain=True)
    await watch.publish(topics.measurement(site), measurement(site, 2.0), retain=True)
    await watch.publish(topics.prices(site), prices(site, at - timedelta(minutes=5), [0.05, 0.40, 0.45]),
                        retain=True)


async def test_a_plan_charges_in_its_cheapest_slot_and_replans_on_new_prices(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"fuse_limit": 25.0, "margin": 1.0, "mode": "solar_only",
                                          "timers": FAST_TIMERS}})
    start = now()
    await start_site(watch, topics, site_id, start)
    async with running(config):
        waiting = sp(await watch.expect(topics.setpoint(site_id, "car")))
        assert (waiting.current, waiting.mode) == (0.0, Mode.SOLAR_ONLY)

        mark = watch.mark()
        await watch.publish(topics.plan_set(site_id, "car"), {
            "target_energy_wh": 5000.0, "deadline": (start + timedelta(hours=2)).isoformat(), "transaction": "p1"})
        plan = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark))
        assert plan.feasible and plan.transaction == "p1" and plan.energy_needed_wh == 5000.0
        assert plan.current == 16.0 and plan.house_estimate == 2.0
        # 5 kWh at 11 kW fits in the 0.05 hour that is running now
        assert [s.price for s in plan.slots] == [0.05] and plan.slots[0].start <= now()
        assert plan.expected_cost == 0.25 and plan.currency == "EUR"
        assert plan.expected_finish is not None and plan.expected_finish < start + timedelta(hours=1)

        charging = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                         where=lambda m: sp(m).current > 0))
        assert (charging.current, charging.mode, charging.reason) == (16.0, Mode.STANDARD, Reason.PLANNED_CHARGING)
        assert "planned slot" in charging.message

        # the bridge publishes new prices: the hour now is dear, the next one cheap: the plan moves there and
        # the car goes back to its own mode until then
        mark = watch.mark()
        await watch.publish(topics.prices(site_id), prices(site_id, start - timedelta(minutes=5), [0.50, 0.04, 0.45]),
                            retain=True)
        moved = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark))
        assert [s.price for s in moved.slots] == [0.04] and moved.slots[0].start > now()
        back = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                     where=lambda m: sp(m).current == 0))
        assert (back.mode, back.reason) == (Mode.SOLAR_ONLY, Reason.WAITING_FOR_SURPLUS)

        # a target the fuse cannot deliver by the deadline is said at once
        mark = watch.mark()
        await watch.publish(topics.plan_set(site_id, "car"), {
            "target_soc": 90.0, "capacity_wh": 80_000.0, "deadline": (start + timedelta(hours=1)).isoformat()})
        short = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark))
        assert not short.feasible and short.shortfall_wh > 0 and "cannot be reached" in short.message
        assert "SOC is unknown" in short.message

        # null clears the plan: the retained plan goes away
        mark = watch.mark()
        await watch.publish(topics.plan_set(site_id, "car"), "null")
        cleared = await watch.expect(topics.plan(site_id, "car"), after=mark)
        assert cleared.payload == b""


async def test_a_plan_survives_a_restart_of_the_allocator(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"mode": "solar_only", "timers": FAST_TIMERS}})
    start = now()
    await start_site(watch, topics, site_id, start)
    async with running(config):
        mark = watch.mark()
        await watch.publish(topics.plan_set(site_id, "car"), {
            "target_energy_wh": 5000.0, "deadline": (start + timedelta(hours=2)).isoformat()})
        await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                           where=lambda m: sp(m).reason is Reason.PLANNED_CHARGING)
    # a new instance reads the plan back from its retained topic and keeps charging by it
    await watch.publish(topics.measurement(site_id), measurement(site_id, 2.0), retain=True)
    mark = watch.mark()
    async with running(config):
        resumed = sp(await watch.expect(topics.setpoint(site_id, "car"), after=mark,
                                        where=lambda m: sp(m).reason is Reason.PLANNED_CHARGING))
        assert resumed.current == 16.0


async def test_a_bad_plan_is_reported_and_sets_nothing(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"timers": FAST_TIMERS}})
    await start_site(watch, topics, site_id, now())
    async with running(config):
        await watch.expect(topics.setpoint(site_id, "car"))
        mark = watch.mark()
        await watch.publish(topics.plan_set(site_id, "car"), {
            "target_soc": 80.0, "deadline": (now() + timedelta(hours=2)).isoformat(), "transaction": "bad"})
        report = (await watch.expect(topics.errors(site_id), after=mark)).model(ErrorReport)
        assert report.error == "validation" and "capacity_wh" in report.message
        assert watch.on(topics.plan(site_id, "car"), after=mark) == []


async def test_a_plan_is_replanned_when_the_fuse_headroom_changes(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"fuse_limit": 25.0, "margin": 1.0, "mode": "solar_only",
                                          "timers": FAST_TIMERS}}, plan_interval=1.0)
    start = now()
    await start_site(watch, topics, site_id, start)
    async with running(config):
        mark = watch.mark()
        await watch.publish(topics.plan_set(site_id, "car"), {
            "target_energy_wh": 15_000.0, "deadline": (start + timedelta(hours=3)).isoformat()})
        roomy = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark))
        assert (roomy.current, roomy.house_estimate) == (16.0, 2.0)
        # the house starts drawing 14 A (a heat pump): the car may have 10 A, so the plan needs more slots
        mark = watch.mark()
        await watch.publish(topics.measurement(site_id), measurement(site_id, 14.0), retain=True)
        tight = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark, timeout=5.0,
                                           where=lambda m: plan_of(m).current == 10.0))
        assert tight.house_estimate == 14.0 and tight.feasible
        assert [s.price for s in tight.slots] == [0.05, 0.40, 0.45]
        assert [s.price for s in roomy.slots] == [0.05, 0.40]


async def test_a_new_soc_replans_at_once(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"mode": "solar_only", "timers": FAST_TIMERS}})  # plan_interval 60 s
    start = now()
    await start_site(watch, topics, site_id, start)
    await watch.publish(topics.load_state(site_id, "car"), evse(site_id, "car").model_copy(update={"soc": 40.0}),
                        retain=True)
    async with running(config):
        mark = watch.mark()
        await watch.publish(topics.plan_set(site_id, "car"), {
            "target_soc": 80.0, "capacity_wh": 50_000.0, "deadline": (start + timedelta(hours=3)).isoformat()})
        first = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark))
        assert first.energy_needed_wh == 20_000.0
        mark = watch.mark()
        await watch.publish(topics.load_state(site_id, "car"),
                            evse(site_id, "car").model_copy(update={"soc": 70.0}), retain=True)
        later = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark))
        assert later.energy_needed_wh == 5_000.0 and [s.price for s in later.slots] == [0.05]


async def test_the_solar_forecast_counts_free(
    watch: Probe, topics: Topics, site_id: str, make_config: Callable[..., AmpmqConfig]
) -> None:
    config = make_config(sites={site_id: {"mode": "solar_only", "timers": FAST_TIMERS}})
    start = now()
    await start_site(watch, topics, site_id, start)
    async with running(config):
        mark = watch.mark()
        await watch.publish(topics.plan_set(site_id, "car"), {
            "target_energy_wh": 5000.0, "deadline": (start + timedelta(hours=3)).isoformat()})
        cheap_now = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark))
        assert [s.price for s in cheap_now.slots] == [0.05]
        # the sun is forecast to cover the car in the dear last hour: that hour is free and the plan moves there
        sunny = start + timedelta(minutes=115)
        mark = watch.mark()
        await watch.publish(topics.pv_forecast(site_id), PvForecast(site=site_id, slots=[
            PvSlot(start=sunny, end=sunny + timedelta(hours=1), power=12_000.0)]), retain=True)
        moved = plan_of(await watch.expect(topics.plan(site_id, "car"), after=mark))
        assert [(s.price, s.solar_wh) for s in moved.slots] == [(0.45, 5000.0)]
        assert moved.expected_cost == 0.0
