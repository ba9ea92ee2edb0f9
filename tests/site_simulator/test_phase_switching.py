"""The phase-switching scenario, shortened, on every real service: a Solar Only 3-phase car on a modest solar
morning cannot start on three phases (the surplus stays short of 3 × 6 A = 4.1 kW); with its charger's 1p/3p
switching the allocator pauses it, switches it to one phase (OCPP ``numberPhases`` 1) and it charges from the
sun. The same morning without switching: nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.site_simulator.comparison import phase_switching_gain, without_phase_switching
from services.site_simulator.report import _phase_gain
from services.site_simulator.runner import run_scenario
from services.site_simulator.scenario import load_scenario
from shared.config import AmpmqConfig
from shared.models import Phase

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "phase-switching.yaml"


async def test_phase_switching_lets_a_solar_only_car_charge_on_one_phase(mqtt_url: str, site_id: str) -> None:
    # 10:00 to 10:40: the car arrives at 10:05
    scenario = load_scenario(SCENARIO).model_copy(update={"site": site_id, "duration": 2400.0, "speed": 300.0})
    baseline = without_phase_switching(scenario)  # what the demo runs a second time for its report
    assert baseline is not None and not baseline.chargers[0].phase_switching
    runs: dict[bool, dict[str, Any]] = {}
    for switching, played in ((True, scenario), (False, baseline)):
        run = played.model_copy(update={"site": f"{site_id}{int(switching)}"})
        result = await run_scenario(run, AmpmqConfig(mqtt_url=mqtt_url, root=f"r-{site_id}-{int(switching)}"))
        kpis = result.kpis
        assert kpis["missing"] == []
        assert kpis["trips"] == 0, kpis["fuse"]
        runs[switching] = kpis
        if switching:
            view = result.view
            # the allocator paused the car to switch it to one phase (L1 on A), then let it charge there
            assert view.phase_switches and view.phase_switches[0].phases == [Phase.A]
            assert "from 3 phases to 1 phase" in view.phase_switches[0].message
            assert kpis["phase_switching"]["one_phase_setpoints"] > 0
            assert kpis["phase_switching"]["three_phase_setpoints"] == 0
            # what flows (the site's physics): the car drew on its charger's L1 only
            assert view.site.chargers["carport"].supplied == 1
    gain = phase_switching_gain(scenario, runs[True], runs[False])["carport"]
    print(f"carport energy, 10:00-10:40: with switching {gain['with_kwh']:.3f} kWh, without {gain['without_kwh']:.3f}")
    assert gain["with_kwh"] > 0.3, gain
    assert gain["without_kwh"] < 0.05, gain
    assert gain["gained_kwh"] == round(gain["with_kwh"] - gain["without_kwh"], 2)
    # the demo's report shows it
    assert "Energy gained by phase switching" in _phase_gain({"carport": gain})
