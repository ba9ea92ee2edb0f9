"""The run's report: ``demo-report.json`` (the KPIs) and ``demo-report.html`` (self-contained, with inline
SVG line charts, see ``chart.py``: phase currents against the limit, solar and consumption, each load's
current and setpoint, battery SOC)."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .chart import Band, Chart, Line

COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def charts(series: list[dict[str, Any]], start: datetime) -> list[Chart]:
    """The report's charts of a recorded series (each value the ``[low, high]`` of its bucket)."""
    times = [start + timedelta(seconds=row["t"]) for row in series]
    if not series:
        return []
    phases = list(series[0]["current"])
    limit = series[0]["limit"]
    current = [Line.of(f"phase {p}", [r["current"].get(p) for r in series], COLORS[i]) for i, p in enumerate(phases)]
    current.append(Line.of(f"limit {limit:g} A", [limit] * len(series), "#000", dashed=True))
    if any(b is not None and b[0] < 0 for line in current for b in line.values):  # the limit of export too
        current.append(Line.of(f"−{limit:g} A", [-limit] * len(series), "#000", dashed=True))
    out = [Chart("Grid current per phase against the fuse limit (import +, export −)", times, current, "A",
                 signs=("import", "export"), mark_peak=True)]
    out.append(Chart("Solar, consumption, grid and battery", times, [
        Line.of("solar", [_kw(r["solar"]) for r in series], "#f2b701"),
        Line.of("consumption", [_kw(r["consumption"]) for r in series], "#1f77b4"),
        Line.of("grid (import +, export −)", [_kw(r["grid"]) for r in series], "#555"),
        Line.of("battery (discharge +)", [_kw(r["battery"]) for r in series], "#2ca02c"),
    ], "kW", signs=("import / discharge", "export / charge")))
    loads = sorted({k for r in series for k in r["loads"]})
    lines = []
    for i, load in enumerate(loads):
        color = COLORS[(i + 3) % len(COLORS)]
        lines.append(Line.of(f"{load} draw", [r["loads"].get(load) for r in series], color))
        lines.append(Line.of(f"{load} setpoint", [(r["setpoints"].get(load)) if r["setpoints"].get(load, 0) >= 0
                                                  else None for r in series], color, dashed=True, steps=True))
    out.append(Chart("Each load's current (per phase) and its setpoint", times, lines, "A"))
    soc = [r["soc"] for r in series]
    if any(v is not None for v in soc):
        extra = [Line.of("battery SOC", soc, "#2ca02c")]
        if any(r["boiler_temperature"] is not None for r in series):
            extra.append(Line.of("boiler tank °C", [r["boiler_temperature"] for r in series], "#d62728"))
        out.append(Chart("Battery state of charge (%) and boiler temperature (°C)", times, extra, "% / °C"))
    return out


def _kw(watts: list[float]) -> Band:
    lo, hi = watts
    return (lo / 1000, hi / 1000)


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) \
        + "</table>"


def _phase_gain(gain: dict[str, dict[str, float]] | None) -> str:
    """What 1p/3p switching gained: the same day run again with switching off (:mod:`.comparison`)."""
    if not gain:
        return ""
    rows = "".join(f"<tr><td>{html.escape(load)}</td><td>{g['with_kwh']:.2f}</td><td>{g['without_kwh']:.2f}</td>"
                   f"<td>{g['gained_kwh']:+.2f}</td></tr>" for load, g in gain.items())
    return ("<h2>Energy gained by phase switching</h2><p>The same day run a second time on the real services with "
            "the chargers' 1p/3p switching off.</p><table><tr><th>charger</th><th>kWh with switching</th>"
            f"<th>kWh without</th><th>gained kWh</th></tr>{rows}</table>")


def _comparison(comparison: dict[str, Any] | None) -> str:
    """The same day under ampmq's core and under evcc's default timers (:mod:`.comparison`), as a table."""
    if not comparison:
        return ""
    ours, theirs = comparison["ampmq"], comparison["evcc_defaults"]
    rows = "".join(
        f"<tr><td>{html.escape(load)} ({html.escape(ours['modes'][load])})</td><td>{starts}</td>"
        f"<td>{theirs['starts'].get(load, 0)}</td><td>{ours['kwh'].get(load, 0.0):.1f}</td>"
        f"<td>{theirs['kwh'].get(load, 0.0):.1f}</td></tr>" for load, starts in ours["starts"].items())
    rows += (f"<tr><td>site: self-consumption</td><td colspan=2>{ours['self_consumption_pct']} % ampmq, "
             f"{theirs['self_consumption_pct']} % evcc</td><td colspan=2>import / export kWh: "
             f"{ours['import_kwh']} / {ours['export_kwh']} ampmq, {theirs['import_kwh']} / {theirs['export_kwh']} "
             "evcc</td></tr>")
    return ("<h2>Start/stop quality beside evcc's default timers</h2>"
            "<p>The same day played twice on the closed-loop physics (services/site_simulator/closed_loop.py): with "
            "ampmq's allocator core, and with evcc's PV-mode defaults (enable delay 1 min, disable delay 3 min, "
            "thresholds 0 W).</p><table><tr><th>load (mode)</th><th>starts ampmq</th><th>starts evcc</th>"
            f"<th>kWh ampmq</th><th>kWh evcc</th></tr>{rows}</table>")


def html_report(kpis: dict[str, Any], series: list[dict[str, Any]], start: datetime) -> str:
    e = kpis["energy_kwh"]
    summary = [
        ("scenario", kpis["scenario"]),
        ("simulated", f"{kpis['simulated_seconds'] / 3600:.1f} h"
                      + (f" of {kpis['planned_seconds'] / 3600:.1f} h (stopped)" if kpis.get("partial") else "")
                      + f" at {kpis.get('speed', 0):g}× ({kpis.get('real_seconds', 0):.0f} s real)"),
        ("trips", str(kpis["trips"])),
        ("peak phase current", f"{kpis['peak_phase_current']:.1f} A (limit {kpis['limit']:g} A)"),
        ("overload time", f"{kpis['overload_seconds']:.0f} s above the rated current"),
        ("solar self-consumption", "—" if kpis["solar_self_consumption"] is None
         else f"{kpis['solar_self_consumption']:.1%}"),
        *((k.replace("_", " "), f"{v:.2f} kWh") for k, v in e.items()),
    ]
    load_rows = "".join(
        f"<tr><td>{html.escape(load)}</td><td>{v['energy_kwh']:.2f}</td>"
        f"<td>{format(v['grid_kwh'], '.2f') if 'grid_kwh' in v else '—'}</td>"
        f"<td>{v['starts']}</td><td>{v['setpoint_cycles']}</td><td>{v['peak_current']:.1f}</td>"
        f"<td>{len(v['flicker_violations'])}</td></tr>" for load, v in kpis["loads"].items())
    missing = "".join(f"<p class=warn>{html.escape(m)}</p>" for m in kpis.get("missing", []))
    partial = ""
    if kpis.get("partial"):
        reached = datetime.fromisoformat(kpis["reached"])
        partial = (f"<p class=partial>Partial report: the run was stopped (Ctrl-C) at {reached:%H:%M} simulated "
                   f"time, after {kpis['simulated_seconds'] / 3600:.1f} of {kpis['planned_seconds'] / 3600:.1f} "
                   "simulated hours. Everything below covers that time only.</p>")
    comparison = _comparison(kpis.get("comparison")) + _phase_gain(kpis.get("phase_switching_gain"))
    title = html.escape(kpis["scenario"]) + (" (partial)" if partial else "")
    figures = "".join(f"<figure>{chart.svg()}</figure>" for chart in charts(series, start))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ampmq demo — {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1000px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
th {{ background: #f3f3f3; }}
figure {{ margin: 1.5em 0; }}
.warn {{ color: #a15c00; font-weight: bold; }}
.partial {{ background: #fff4d6; border: 1px solid #e0b84c; padding: 8px 12px; font-weight: bold; }}
</style></head><body>
<h1>ampmq demo: {title}</h1>
{partial}
{missing}
{_table(summary)}
<h2>Loads</h2>
<table><tr><th>load</th><th>energy kWh</th><th>grid kWh (Solar Only)</th><th>starts</th>
<th>setpoint starts</th><th>peak A</th><th>anti-flicker violations</th></tr>{load_rows}</table>
{comparison}
{figures}
<h2>KPIs (as in demo-report.json)</h2>
<pre>{html.escape(json.dumps(kpis, indent=2))}</pre>
</body></html>
"""


def write_reports(directory: Path, kpis: dict[str, Any], series: list[dict[str, Any]], start: datetime
                  ) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "demo-report.json"
    html_path = directory / "demo-report.html"
    json_path.write_text(json.dumps(kpis, indent=2, default=str) + "\n")
    html_path.write_text(html_report(kpis, series, start))
    return json_path, html_path
