"""The grid-operator dimming scenario, shortened, on every real service: the simulated control box sends
its §14a signal over MQTT, the real allocator dims the 3-phase car to 4.2 kW with reason
``grid_operator_limit`` and leaves the 1-phase car (3.7 kW, under the cap) alone; the box's signal as the
simulator sends it, and the allocator's policy from the same scenario."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.site_simulator.grid_operator import signal_at
from services.site_simulator.runner import run_scenario
from services.site_simulator.scenario import load_scenario
from shared.config import AmpmqConfig

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "grid-operator-dimming.yaml"


async def test_the_dimming_window_dims_the_three_phase_car(mqtt_url: str, site_id: str) -> None:
    # 17:00 to 17:40: the cars arrive at 17:05 and 17:10, the window opens at 17:20
    scenario = load_scenario(SCENARIO).model_copy(update={"site": site_id, "duration": 2400.0, "speed": 300.0})
    result = await run_scenario(scenario, AmpmqConfig(mqtt_url=mqtt_url, root=f"r-{site_id}"))
    kpis = result.kpis
    assert kpis["missing"] == []
    assert kpis["trips"] == 0, kpis["fuse"]
    assert kpis["grid_operator"]["signals"] > 0
    assert kpis["grid_operator"]["dimmed_loads"] == ["carport"]
    # every dimmed setpoint is the carport's, at 4.2 kW over its three phases, and none before the window
    window = scenario.start + timedelta(minutes=20)
    dimmed = result.view.dimmed
    assert dimmed and all(sp.current == pytest.approx(4200.0 / 690.0, abs=0.01) for sp in dimmed)
    assert min(sp.ts for sp in dimmed) >= window - timedelta(seconds=5)
    # the car took 16 A before the window (the recorded setpoints), and draws about 4.2 kW in it
    before = [row["setpoints"].get("carport", 0.0) for row in result.view.recorder.series if row["t"] < 1200.0]
    assert max(before) == 16.0
    # what flows (the site's physics, not a claim): once the car followed, about 4.2 kW on its three phases
    during = [row["loads"]["carport"] for row in result.view.recorder.series if 1500.0 <= row["t"] <= 2300.0]
    assert during and all(high * 690.0 == pytest.approx(4200.0, abs=150.0) for _, high in during)


def test_the_control_box_sends_the_window_and_falls_silent() -> None:
    scenario = load_scenario(SCENARIO)
    spec = scenario.grid_operator
    assert spec is not None
    zone = scenario.start.tzinfo

    def at(hhmm: str) -> datetime:
        hours, minutes = map(int, hhmm.split(":"))
        return scenario.start.replace(hour=hours, minute=minutes)

    quiet = signal_at(spec, at("17:10"), zone)
    assert quiet is not None and quiet.values.limits is False
    dim = signal_at(spec, at("17:45"), zone)
    assert dim is not None and dim.controllable_cap_w == 4200.0 and dim.valid_until == at("18:30")
    assert signal_at(spec, at("19:40"), zone) is None  # silent: the allocator's fallback comes after 300 s
    signal = signal_at(spec, at("20:00"), zone)
    assert signal is not None and not signal.values.limits
