"""The live dashboard tells import from export at a glance: another glyph, another colour and a sign."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from services.site_simulator.dashboard import EXPORT_CELL, IMPORT_CELL, STOPPING, flow, line, phase_bar, render
from services.site_simulator.recorder import Recorder
from services.site_simulator.runner import LiveView
from services.site_simulator.scenario import load_scenario
from services.site_simulator.site import Site
from shared.models import LoadPlan

MIDDAY = Path(__file__).with_name("midday.yaml")


def test_an_export_bar_looks_unlike_an_import_bar_of_the_same_size() -> None:
    imported, exported = phase_bar(10.0, 25.0), phase_bar(-10.0, 25.0)
    assert imported.plain.count(IMPORT_CELL) == exported.plain.count(EXPORT_CELL) == 8
    assert EXPORT_CELL not in imported.plain and IMPORT_CELL not in exported.plain
    assert imported.style != exported.style
    # past the limit each direction still has its own colour
    assert phase_bar(30.0, 25.0).style != phase_bar(-30.0, 25.0).style
    assert flow(10.04, "A") == "+10.0 A import" and flow(-4.0, "A") == "−4.0 A export" and flow(0.01, "A") == "0.0 A"


def test_the_dashboard_of_a_site_exporting_at_noon_says_export() -> None:
    scenario = load_scenario(MIDDAY)  # 11:00 in June, 9 kWp: the site exports on every phase
    site = Site(scenario)
    recorder = Recorder(scenario, set(), scenario.start)
    for _ in range(30):
        state = site.step(2.0)
        recorder.sample(state, scenario.grid.fuse)
    assert all(amps < -1 for amps in site.state.grid_current.values())
    view = LiveView(scenario, site, recorder, {}, scenario.duration, scenario.speed, [])
    console = Console(width=160, record=True, color_system="truecolor")
    console.print(render(view))
    screen = console.export_text()
    phase_rows = [row for row in screen.splitlines() if row.strip()[:1] in ("A", "B", "C") and "A export" in row]
    assert len(phase_rows) == 3 and all(EXPORT_CELL in row and IMPORT_CELL not in row for row in phase_rows)
    assert "kW export" in screen
    assert "Ctrl-C" in screen
    console = Console(width=160, record=True)
    console.print(render(view, stopping=True))
    assert STOPPING[:40] in console.export_text()
    assert " export=" in line(view)


def test_the_dashboard_shows_a_departure_plan_and_says_when_it_falls_short() -> None:
    scenario = load_scenario(MIDDAY)
    site = Site(scenario)
    view = LiveView(scenario, site, Recorder(scenario, set(), scenario.start), {}, scenario.duration,
                    scenario.speed, [])
    view.plans["carport"] = LoadPlan(site="home", load="carport", target_soc=80.0, capacity_wh=58_000.0,
                                     deadline=scenario.end, feasible=False,
                                     message="80 % by 13:30 +02:00 cannot be reached: 4.1 kWh short")
    console = Console(width=160, record=True)
    console.print(render(view))
    assert "plan carport: 80 % by 13:30 +02:00 cannot be reached: 4.1 kWh short" in console.export_text()
