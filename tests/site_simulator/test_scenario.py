"""Scenario files: every file in scenarios/ loads, and a bad one is refused with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.site_simulator.scenario import ScenarioError, load_scenario
from services.site_simulator.site import Site
from services.site_simulator.wiring import Ports, build
from shared.config import AmpmqConfig

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


def test_the_required_scenarios_exist() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"sunny-day", "cloudy-day", "winter-evening-peak", "one-phase-site", "four-chargers-one-circuit"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_loads_runs_an_hour_of_physics_and_wires_every_service(path: Path) -> None:
    scenario = load_scenario(path)
    site = Site(scenario)
    for _ in range(360):
        site.step(10.0)
    assert site.t == pytest.approx(3600.0)
    wiring = build(AmpmqConfig(), scenario, Ports("mqtt://127.0.0.1:1883", 9000, 5020))
    from services.allocator.config import AllocatorConfig
    from services.load_adapters.service import LoadAdaptersConfig
    from services.meter_bridge.config import MeterBridgeConfig
    from services.ocpp_gateway.config import GatewayConfig

    for section, model in (("allocator", AllocatorConfig), ("load_adapters", LoadAdaptersConfig),
                           ("meter_bridge", MeterBridgeConfig), ("ocpp_gateway", GatewayConfig)):
        wiring.config.section(section, model)  # raises ConfigError naming the field


@pytest.mark.parametrize(("text", "field"), [
    ("name: x\nstart: '2026-01-01T00:00:00+00:00'\ngrid: {fuse: -3}\n", "grid.fuse"),
    ("name: x\nstart: '2026-01-01T00:00:00'\n", "start"),
    ("name: x\nstart: '2026-01-01T00:00:00+00:00'\nchargers: [{id: a, circuit: nope}]\n", "unknown circuit"),
    ("name: x\nstart: '2026-01-01T00:00:00+00:00'\nsolar: {peak_power: 1, clouds: 2}\n", "solar.clouds"),
    ("name: x\nstart: '2026-01-01T00:00:00+00:00'\nbogus: 1\n", "bogus"),
    ("- a list\n", "mapping"),
])
def test_bad_scenarios_are_refused_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        load_scenario(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")
