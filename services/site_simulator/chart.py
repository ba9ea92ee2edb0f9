"""Line charts as inline SVG for the demo's report: no script, no external resource.

Each point of a line is a *band*: the lowest and the highest value of one recording bucket (see
``recorder.py``). The line goes through both ends of every band, so a spike of a few seconds inside a
30 s bucket is drawn to its full height — the chart's peak is the peak the summary table reports. The value
axis has round-number ticks (steps of 1, 2 or 5 × 10ⁿ), the time axis ticks on round clock times, and on a
chart whose values cross zero the part below zero is tinted and labelled (for the grid: export).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

#: A bucket's (lowest, highest) value; a plain value is the band (v, v).
Band = tuple[float, float]

#: Time-axis steps (minutes) a chart may use, from fine to coarse.
TIME_STEPS_MIN = (1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440)


def band(value: float | Band | None) -> Band | None:
    """``value`` as a band: a number is the band (v, v); a pair is ordered low to high."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return (float(value), float(value))
    lo, hi = value
    return (lo, hi) if lo <= hi else (hi, lo)


def round_step(span: float, max_intervals: int = 6) -> float:
    """The smallest step of 1, 2 or 5 × 10ⁿ that covers ``span`` in at most ``max_intervals`` steps."""
    if not span > 0 or max_intervals < 1:
        return 1.0
    raw = span / max_intervals
    exponent = math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        step = multiple * 10.0 ** exponent
        if step >= raw * (1 - 1e-9):
            return step
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


def axis_ticks(lo: float, hi: float, max_intervals: int = 6) -> list[float]:
    """Round-number ticks for values from ``lo`` to ``hi``: evenly spaced by 1, 2 or 5 × 10ⁿ, the first at or
    below ``lo`` and the last at or above ``hi``, at most ``max_intervals`` intervals. An empty range is
    widened to one unit."""
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo < 1e-9:
        lo, hi = lo, lo + 1.0
    step = round_step(hi - lo, max_intervals)
    while True:
        first = math.floor(lo / step + 1e-9)
        last = math.ceil(hi / step - 1e-9)
        if last - first <= max_intervals:
            break
        step = round_step(step * 2.0000001, 1)  # widened to whole steps it needs one more: next round step
    places = max(0, -math.floor(math.log10(step) + 1e-9))
    return [round(k * step, places) + 0.0 for k in range(first, last + 1)]  # + 0.0: no "-0"


def tick_label(value: float, ticks: list[float]) -> str:
    """``value`` with as many decimals as the ticks' step needs (none for whole steps)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    places = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{places}f}"


def time_ticks(start: datetime, end: datetime, max_ticks: int = 12) -> list[datetime]:
    """Round clock times between ``start`` and ``end`` (whole minutes, quarter hours, hours ...), at most
    ``max_ticks`` of them, aligned to the start's own time zone."""
    seconds = (end - start).total_seconds()
    if seconds <= 0:
        return [start]
    minutes = next((m for m in TIME_STEPS_MIN if seconds / (m * 60) <= max_ticks - 1), TIME_STEPS_MIN[-1])
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    step = timedelta(minutes=minutes)
    tick = midnight + step * math.ceil((start - midnight) / step - 1e-9)
    out = []
    while tick <= end:
        out.append(tick)
        tick += step
    return out


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    values: list[Band | None]
    color: str
    dashed: bool = False
    #: A value that holds until the next one (a setpoint): drawn as steps, not slopes.
    steps: bool = False

    @classmethod
    def of(cls, name: str, values: list[float | Band | None], color: str, dashed: bool = False,
           steps: bool = False) -> Line:
        return cls(name, [band(v) for v in values], color, dashed, steps)


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart of lines over time: ``times[i]`` is the end of the bucket each line's ``values[i]`` covers."""

    title: str
    times: list[datetime]
    lines: list[Line]
    unit: str
    #: Labels of the parts above and below zero, when the values cross it (e.g. "import" / "export").
    signs: tuple[str, str] | None = None
    #: Mark the largest magnitude on the chart with its value ("peak 35.2 A").
    mark_peak: bool = False
    width: int = 960
    height: int = 280

    left = 56
    right = 200
    top = 28
    bottom = 30

    @property
    def ticks(self) -> list[float]:
        values = [v for line in self.lines for b in line.values if b is not None for v in b]
        lo = min(min(values, default=0.0), 0.0)
        hi = max(max(values, default=1.0), 0.0)
        return axis_ticks(lo, hi)

    def peak(self) -> float:
        """The largest magnitude any line reaches (the ``limit`` lines, drawn dashed, are not data)."""
        return max((abs(v) for line in self.lines if not line.dashed for b in line.values if b is not None
                    for v in b), default=0.0)

    def svg(self) -> str:
        ticks = self.ticks
        lo, hi = ticks[0], ticks[-1]
        plot_w = self.width - self.left - self.right
        plot_h = self.height - self.top - self.bottom
        t0 = self.times[0] if self.times else datetime.now()
        t1 = self.times[-1] if self.times else t0
        seconds = max(1e-9, (t1 - t0).total_seconds())

        def x(at: datetime) -> float:
            return self.left + plot_w * (at - t0).total_seconds() / seconds

        def y(v: float) -> float:
            return self.top + plot_h * (1 - (v - lo) / (hi - lo))

        left, top, right_edge = self.left, self.top, self.left + plot_w
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
               f'viewBox="0 0 {self.width} {self.height}" style="max-width:100%;height:auto" '
               'font-family="system-ui, sans-serif" role="img" '
               f'aria-label="{html.escape(self.title)}">',
               f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(self.title)}</text>',
               f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>']
        if self.signs is not None and lo < 0 < hi:
            above, below = self.signs
            out.append(f'<rect x="{left}" y="{y(0):.1f}" width="{plot_w}" height="{top + plot_h - y(0):.1f}" '
                       'fill="#e6f2f8"/>')
            ly = top + 14 + (len(self.lines) + 0.5) * 16
            out.append(f'<text x="{right_edge + 10}" y="{ly}" font-size="11" fill="#444">▲ above 0: '
                       f'{html.escape(above)}</text>')
            out.append(f'<rect x="{right_edge + 10}" y="{ly + 5}" width="20" height="12" fill="#e6f2f8" '
                       'stroke="#9cc3d6"/>')
            out.append(f'<text x="{right_edge + 34}" y="{ly + 15}" font-size="11" fill="#2b6f8f">▼ below 0: '
                       f'{html.escape(below)}</text>')
        for v in ticks:
            out.append(f'<line x1="{left}" x2="{right_edge}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                       f'stroke="{"#999" if v == 0 else "#e5e5e5"}"/>')
            out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">'
                       f'{tick_label(v, ticks)}</text>')
        out.append(f'<text x="12" y="{top + plot_h / 2}" font-size="11" '
                   f'transform="rotate(-90 12 {top + plot_h / 2})">{html.escape(self.unit)}</text>')
        for at in time_ticks(t0, t1) if self.times else []:
            out.append(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" '
                       'stroke="#999"/>')
            out.append(f'<text x="{x(at):.1f}" y="{self.height - 10}" font-size="11" text-anchor="middle">'
                       f'{at:%H:%M}</text>')
        for idx, line in enumerate(self.lines):
            dash = ' stroke-dasharray="6 4"' if line.dashed else ""
            for segment in polyline_points(line.values, line.steps):
                points = " ".join(f"{x(self.times[i]):.1f},{y(v):.1f}" for i, v in segment)
                if len(segment) > 1:
                    out.append(f'<polyline fill="none" stroke="{line.color}" stroke-width="1.6"{dash} '
                               f'stroke-linejoin="round" points="{points}"/>')
            ly = top + 14 + idx * 16
            out.append(f'<line x1="{right_edge + 10}" x2="{right_edge + 30}" y1="{ly - 4}" y2="{ly - 4}" '
                       f'stroke="{line.color}" stroke-width="2"{dash}/>')
            out.append(f'<text x="{right_edge + 34}" y="{ly}" font-size="11">{html.escape(line.name)}</text>')
        if self.mark_peak and self.times:
            out.append(self._peak_marker(x, y))
        out.append("</svg>")
        return "\n".join(out)

    def _peak_marker(self, x: Callable[[datetime], float], y: Callable[[float], float]) -> str:
        peak = self.peak()
        for line in self.lines:
            if line.dashed:
                continue
            for i, b in enumerate(line.values):
                if b is None:
                    continue
                value = b[1] if abs(b[1]) >= abs(b[0]) else b[0]
                if abs(value) == peak:
                    px, py = x(self.times[i]), y(value)
                    anchor = "end" if px > self.left + (self.width - self.left - self.right) * 0.8 else "start"
                    dx = -6 if anchor == "end" else 6
                    dy = 12 if value < 0 else -4
                    return (f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="none" stroke="{line.color}"/>'
                            f'<text x="{px + dx:.1f}" y="{py + dy:.1f}" font-size="11" text-anchor="{anchor}" '
                            f'fill="{line.color}" stroke="#fff" stroke-width="3" paint-order="stroke">'
                            f'peak {peak:.1f} {html.escape(self.unit)}</text>')
        return ""


def polyline_points(values: list[Band | None], steps: bool = False) -> list[list[tuple[int, float]]]:
    """The points of a line: unbroken runs of bands, each band entered at its end nearer the previous point
    and left at the other, so the path covers every band's full range. With ``steps`` a value holds until
    the next one: the path goes across at the old value, then up or down."""
    segments: list[list[tuple[int, float]]] = [[]]
    for i, b in enumerate(values):
        if b is None:
            if segments[-1]:
                segments.append([])
            continue
        lo, hi = b
        current = segments[-1]
        if steps and current and current[-1][1] != lo:
            current.append((i, current[-1][1]))
        if lo == hi:
            current.append((i, lo))
        elif current and abs(current[-1][1] - hi) < abs(current[-1][1] - lo):
            current += [(i, hi), (i, lo)]
        else:
            current += [(i, lo), (i, hi)]
    return [s for s in segments if s]
