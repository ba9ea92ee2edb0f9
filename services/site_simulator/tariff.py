"""The scenario's price curve and departure plans as a tariff bridge and a user would publish them: the
prices retained on ``<site>/prices``, each plan on ``<site>/load/<load>/plan/set`` once the allocator is
online (a command is not retained: published before the allocator subscribed, it would be lost)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, time, timedelta

from shared.models import PlanSet, PriceForecast, PriceSlot
from shared.mqtt import Runtime
from shared.topics import Topics

from .scenario import Scenario


def next_local(after: datetime, at: time) -> datetime:
    """The first ``at`` (local time of ``after``'s zone) at or after ``after``."""
    candidate = after.replace(hour=at.hour, minute=at.minute, second=at.second, microsecond=0)
    return candidate if candidate >= after else candidate + timedelta(days=1)


def price_forecast(scenario: Scenario) -> PriceForecast | None:
    """The scenario's price curve on the day that covers its start (else the first day after it)."""
    spec = scenario.prices
    if spec is None:
        return None
    step = timedelta(seconds=spec.slot)
    span = step * len(spec.values)
    first = scenario.start.replace(hour=spec.start.hour, minute=spec.start.minute, second=0, microsecond=0)
    if first > scenario.start and first - timedelta(days=1) + span > scenario.start:
        first -= timedelta(days=1)  # yesterday's curve still covers the start (a night curve, a run from 01:30)
    elif first + span <= scenario.start:
        first += timedelta(days=1)  # today's curve is over by the start: tomorrow's
    return PriceForecast(ts=scenario.start, site=scenario.site, slots=[
        PriceSlot(start=first + i * step, end=first + (i + 1) * step, price=value, currency=spec.currency)
        for i, value in enumerate(spec.values)])


def price_at(forecast: PriceForecast, when: datetime) -> float | None:
    """The price of the slot ``when`` falls in, None outside every slot."""
    return next((s.price for s in forecast.slots if s.start <= when < s.end), None)


def plan_commands(scenario: Scenario) -> dict[str, PlanSet]:
    """Load id -> the ``plan/set`` the scenario gives it."""
    chargers = {c.id: c for c in scenario.chargers}
    commands = {}
    for plan in scenario.plans:
        ev = chargers[plan.load].ev
        commands[plan.load] = PlanSet(
            target_soc=plan.target_soc, target_energy_wh=plan.target_energy_wh,
            capacity_wh=ev.capacity if plan.target_soc is not None and ev is not None else None,
            deadline=next_local(scenario.start, plan.deadline), transaction="scenario")
    return commands


async def publish_tariff_and_plans(runtime: Runtime, topics: Topics, scenario: Scenario,
                                   allocator_online: Callable[[], bool], planned: Callable[[str], bool],
                                   wait: float = 30.0) -> None:
    """Publish the prices (retained) now, and each plan once the allocator is online, again every few
    seconds (real time) until its plan comes back or ``wait`` seconds passed."""
    prices = price_forecast(scenario)
    if prices is not None:
        await runtime.publish(topics.prices(scenario.site), prices, retain=True)
    commands = plan_commands(scenario)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait
    while commands and loop.time() < give_up:
        if allocator_online():
            for load, command in list(commands.items()):
                if planned(load):
                    del commands[load]
                else:
                    await runtime.publish(topics.plan_set(scenario.site, load), command)
            await asyncio.sleep(2.0)
        else:
            await asyncio.sleep(0.1)
