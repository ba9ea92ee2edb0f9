"""The run's report: ``demo-report.json`` (the KPIs) and ``demo-report.html`` (self-contained, with inline
SVG line charts drawn here: phase currents against the limit, solar and consumption, each load's current
and setpoint, battery SOC)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    values: list[float | None]
    color: str
    dashed: bool = False


def svg_chart(title: str, times: list[datetime], lines: list[Line], unit: str, width: int = 900,
              height: int = 260) -> str:
    """A line chart as an ``<svg>`` element (no script, no external resource)."""
    left, right, top, bottom = 56, 150, 28, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    values: list[float] = [v for line in lines for v in line.values if v is not None]
    lo: float = min(values) if values else 0.0
    hi: float = max(values) if values else 1.0
    lo = min(lo, 0.0)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    span = hi - lo
    hi += span * 0.05
    n = max(1, len(times) - 1)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">{v:.1f}</text>')
    out.append(f'<text x="12" y="{top + plot_h / 2}" font-size="11" transform="rotate(-90 12 {top + plot_h / 2})">'
               f'{html.escape(unit)}</text>')
    if lo < 0 < hi:
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999"/>')
    if times:
        step = max(1, len(times) // 8)
        for i in range(0, len(times), step):
            out.append(f'<text x="{x(i):.1f}" y="{height - 10}" font-size="11" text-anchor="middle">'
                       f'{times[i]:%H:%M}</text>')
    for idx, line in enumerate(lines):
        segments: list[list[str]] = [[]]
        for i, point in enumerate(line.values):
            if point is None:
                segments.append([])
            else:
                segments[-1].append(f"{x(i):.1f},{y(point):.1f}")
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline fill="none" stroke="{line.color}" stroke-width="1.6"{dash} '
                           f'points="{" ".join(seg)}"/>')
        ly = top + 14 + idx * 16
        out.append(f'<line x1="{left + plot_w + 10}" x2="{left + plot_w + 30}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{line.color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{left + plot_w + 34}" y="{ly}" font-size="11">{html.escape(line.name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def charts(series: list[dict[str, Any]], start: datetime) -> list[str]:
    times = [start + timedelta(seconds=row["t"]) for row in series]
    if not series:
        return []
    phases = list(series[0]["current"])
    limit = series[0]["limit"]
    out = [svg_chart("Grid current per phase against the fuse limit", times, [
        *(Line(f"phase {p}", [r["current"].get(p) for r in series], COLORS[i]) for i, p in enumerate(phases)),
        Line(f"limit {limit:g} A", [limit] * len(series), "#000", dashed=True),
        Line(f"-{limit:g} A", [-limit] * len(series), "#000", dashed=True),
    ], "A")]
    out.append(svg_chart("Solar, consumption and grid", times, [
        Line("solar", [r["solar"] / 1000 for r in series], "#f2b701"),
        Line("consumption", [r["consumption"] / 1000 for r in series], "#1f77b4"),
        Line("grid (import +)", [r["grid"] / 1000 for r in series], "#555"),
        Line("battery (discharge +)", [r["battery"] / 1000 for r in series], "#2ca02c"),
    ], "kW"))
    loads = sorted({k for r in series for k in r["loads"]})
    lines = []
    for i, load in enumerate(loads):
        color = COLORS[(i + 3) % len(COLORS)]
        lines.append(Line(f"{load} draw", [r["loads"].get(load) for r in series], color))
        lines.append(Line(f"{load} setpoint", [(r["setpoints"].get(load)) if r["setpoints"].get(load, 0) >= 0
                                               else None for r in series], color, dashed=True))
    out.append(svg_chart("Each load's current (per phase) and its setpoint", times, lines, "A"))
    soc = [r["soc"] for r in series]
    if any(v is not None for v in soc):
        extra = [Line("battery SOC", soc, "#2ca02c")]
        if any(r["boiler_temperature"] is not None for r in series):
            extra.append(Line("boiler tank °C", [r["boiler_temperature"] for r in series], "#d62728"))
        out.append(svg_chart("Battery state of charge (%) and boiler temperature (°C)", times, extra, "% / °C"))
    return out


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) \
        + "</table>"


def html_report(kpis: dict[str, Any], series: list[dict[str, Any]], start: datetime) -> str:
    e = kpis["energy_kwh"]
    summary = [
        ("scenario", kpis["scenario"]),
        ("simulated", f"{kpis['simulated_seconds'] / 3600:.1f} h at {kpis.get('speed', 0):g}× "
                      f"({kpis.get('real_seconds', 0):.0f} s real)"),
        ("trips", str(kpis["trips"])),
        ("peak phase current", f"{kpis['peak_phase_current']:.1f} A (limit {kpis['limit']:g} A)"),
        ("overload time", f"{kpis['overload_seconds']:.0f} s above the rated current"),
        ("solar self-consumption", "—" if kpis["solar_self_consumption"] is None
         else f"{kpis['solar_self_consumption']:.1%}"),
        *((k.replace("_", " "), f"{v:.2f} kWh") for k, v in e.items()),
    ]
    load_rows = "".join(
        f"<tr><td>{html.escape(load)}</td><td>{v['energy_kwh']:.2f}</td><td>{v.get('grid_kwh', '')}</td>"
        f"<td>{v['starts']}</td><td>{v['setpoint_cycles']}</td><td>{v['peak_current']:.1f}</td>"
        f"<td>{len(v['flicker_violations'])}</td></tr>" for load, v in kpis["loads"].items())
    missing = "".join(f"<p class=warn>{html.escape(m)}</p>" for m in kpis.get("missing", []))
    figures = "".join(f"<figure>{svg}</figure>" for svg in charts(series, start))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ampmq demo — {html.escape(kpis['scenario'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1000px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
th {{ background: #f3f3f3; }}
figure {{ margin: 1.5em 0; }}
.warn {{ color: #a15c00; font-weight: bold; }}
</style></head><body>
<h1>ampmq demo: {html.escape(kpis['scenario'])}</h1>
{missing}
{_table(summary)}
<h2>Loads</h2>
<table><tr><th>load</th><th>energy kWh</th><th>grid kWh (Solar Only)</th><th>starts</th>
<th>setpoint starts</th><th>peak A</th><th>anti-flicker violations</th></tr>{load_rows}</table>
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
