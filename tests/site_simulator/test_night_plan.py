"""The night-tariff scenario: its price curve and plan as the simulator publishes them, and an hour of it on
every real service — the Solar Only car charges in the night only in the slots its departure plan chose."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import pytest

from services.site_simulator.runner import run_scenario
from services.site_simulator.scenario import PlanSpec, ScenarioError, load_scenario
from services.site_simulator.tariff import plan_commands, price_forecast
from shared.config import AmpmqConfig

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "night-tariff-plan.yaml"


def test_the_price_curve_lands_on_the_night_that_covers_the_start() -> None:
    scenario = load_scenario(SCENARIO)
    evening = price_forecast(scenario)
    assert evening is not None and evening.slots[0].start == scenario.start
    assert evening.slots[-1].end == datetime.fromisoformat("2026-12-16T07:00:00+01:00")
    # started at 01:30 the same night's curve applies, not the next evening's
    late = scenario.model_copy(update={"start": datetime.fromisoformat("2026-12-16T01:30:00+01:00")})
    forecast = price_forecast(late)
    assert forecast is not None and forecast.slots[0].start == scenario.start
    command = plan_commands(late)["carport"]
    assert (command.target_soc, command.capacity_wh) == (80.0, 60_000.0)
    assert command.deadline == datetime.fromisoformat("2026-12-16T07:00:00+01:00")


def test_a_plan_for_a_load_that_is_not_a_charger_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstart: '2026-01-01T00:00:00+00:00'\nplans: [{load: nope, target_soc: 80, "
                   "deadline: '07:00'}]\n")
    with pytest.raises(ScenarioError, match="not a charger"):
        load_scenario(bad)


async def test_an_hour_of_the_night_on_every_real_service(mqtt_url: str, site_id: str) -> None:
    # 01:30 to 02:30 with a plan for 50 %: 12 kWh fit in the 02:00 (0.14) hour and a bit of the 03:00 one, so
    # the Solar Only car must stay off until 02:00 (0.16 now) and charge after it. It comes home at 01:35, once
    # the charger has its profiles (a car plugged in before the charger connects draws its maximum until then)
    night = load_scenario(SCENARIO)
    carport = night.chargers[0]
    assert carport.ev is not None
    car_home = carport.model_copy(update={"ev": carport.ev.model_copy(update={"arrives": time(1, 35)})})
    scenario = night.model_copy(update={
        "site": site_id, "start": datetime.fromisoformat("2026-12-16T01:30:00+01:00"), "duration": 3600.0,
        "speed": 240.0, "chargers": [car_home],
        "plans": [PlanSpec(load="carport", target_soc=50.0, deadline=time(7, 0))]})
    result = await run_scenario(scenario, AmpmqConfig(mqtt_url=mqtt_url, root=f"r-{site_id}"))
    kpis = result.kpis
    assert kpis["trips"] == 0
    plan = kpis["plans"]["carport"]
    assert plan["feasible"], plan["message"]
    assert datetime.fromisoformat(plan["slots"][0][0]) >= datetime.fromisoformat("2026-12-16T02:00:00+01:00")
    assert plan["slots"][0][2] == 0.14
    car = kpis["loads"]["carport"]
    # half an hour at up to 16 A on 3 phases is at most 5.5 kWh; charging all hour would be twice that
    assert 2.0 < car["energy_kwh"] < 6.0, car
    # and every kWh of it at the 0.14 of the slot the plan chose, none at the 0.16 before it
    assert car["cost"] == pytest.approx(0.14 * car["energy_kwh"], rel=0.01), car
