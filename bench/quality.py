"""Control quality: starts per load and self-consumption on each demo scenario, ours beside evcc's default timers.

Each scenario in ``scenarios/`` is played as a closed loop (``services/site_simulator/closed_loop.py``, through
``services/site_simulator/comparison.py``): its house
(appliances and base load, from the simulator's seeded profiles), its sun with clouds, its battery doing
self-consumption, its cars (arriving, leaving, full after the energy they want) and its boiler (an on/off
load until its tank is hot), one decision every 10 s. The same day runs twice: with the allocator core, and
with the comparison policy ``services.allocator.evcc_policy`` (evcc's PV-mode enable delay 1 min, disable
delay 3 min, thresholds 0 W), everything else equal. Figures per scenario and policy: starts per load, energy
per load (kWh), self-consumption (share of the solar energy used on site), import and export (kWh).

``python -m bench quality`` (or ``python -m bench.quality`` for the table alone). Nothing here fails: the
figures are for reading (the harness's tests assert the behaviour).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.site_simulator.comparison import compare
from services.site_simulator.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def run_all(quick: bool = False) -> dict[str, Any]:
    paths = sorted(SCENARIOS.glob("*.yaml"))
    if quick:
        paths = paths[:2]
    return {path.stem: compare(load_scenario(path)) for path in paths}


def table(results: dict[str, Any]) -> str:
    """One row per scenario and load: starts and kWh under each policy; then the site's figures."""
    rows = ["| scenario | load (mode) | starts ampmq | starts evcc | kWh ampmq | kWh evcc |",
            "| --- | --- | --- | --- | --- | --- |"]
    for stem, r in results.items():
        if not isinstance(r, dict) or "ampmq" not in r:
            continue
        ours, theirs = r["ampmq"], r["evcc_defaults"]
        for load, starts in ours["starts"].items():
            rows.append(f"| {stem} | {load} ({ours['modes'][load]}) | {starts} | {theirs['starts'][load]} | "
                        f"{ours['kwh'][load]} | {theirs['kwh'][load]} |")
        rows.append(f"| {stem} | site: self-consumption %, import / export kWh | "
                    f"{ours['self_consumption_pct']} | {theirs['self_consumption_pct']} | "
                    f"{ours['import_kwh']} / {ours['export_kwh']} | {theirs['import_kwh']} / {theirs['export_kwh']} |")
    return "\n".join(rows)


def run(quick: bool = False) -> dict[str, Any]:
    """The bench entry point: every scenario's figures and the table."""
    results = run_all(quick)
    results["table"] = table(results)
    return results


if __name__ == "__main__":
    res = run_all("--quick" in sys.argv)
    print(json.dumps(res, indent=2))
    print(table(res))
