"""The recorder's KPIs and the report, from an hour of the sunny day's physics (no services: nothing
limits the chargers, so the numbers are the physics' own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.site_simulator.recorder import Recorder
from services.site_simulator.report import write_reports
from services.site_simulator.scenario import load_scenario
from services.site_simulator.site import Site

SUNNY = Path(__file__).resolve().parents[2] / "scenarios" / "sunny-day.yaml"


def test_kpis_add_up_and_the_report_has_its_charts(tmp_path: Path) -> None:
    scenario = load_scenario(SUNNY)
    site = Site(scenario)
    recorder = Recorder(scenario, {"garage"}, scenario.start)
    for _ in range(3 * 1800):
        state = site.step(2.0)
        recorder.step(state, 2.0)
        recorder.sample(state, scenario.grid.fuse)
    kpis = recorder.kpis(site, 60.0, 120.0, [])
    e = kpis["energy_kwh"]
    # the site balances: what comes in (grid, solar, battery) is what goes out (house, loads, export)
    loads = sum(v["energy_kwh"] for v in kpis["loads"].values())
    supply = e["grid_import"] + e["solar"] + e["battery_discharge"]
    demand = e["house"] + loads + e["grid_export"] + e["battery_charge"]
    assert supply == pytest.approx(demand, rel=0.01)
    assert kpis["loads"]["garage"]["energy_kwh"] > 0  # the Solar Only car charged (uncontrolled)
    assert 0.0 <= kpis["loads"]["garage"]["grid_kwh"] <= kpis["loads"]["garage"]["energy_kwh"]
    assert kpis["peak_phase_current"] == max(f["peak"] for f in kpis["fuse"]["phases"].values())
    assert len(recorder.series) == pytest.approx(3 * 3600 / scenario.timing.sample_interval, abs=2)
    json_path, html_path = write_reports(tmp_path, kpis, recorder.series, scenario.start)
    assert json.loads(json_path.read_text())["scenario"] == "Sunny day"
    page = html_path.read_text()
    assert page.count("<svg") == 4
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
