"""The live view of a run: a refreshing terminal dashboard (``rich``) on a TTY, a line log otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .runner import LiveView

#: Cells of a phase bar: import fills with a solid block, export with a light shade (and another colour).
IMPORT_CELL, EXPORT_CELL = "█", "░"


def phase_bar(amps: float, limit: float, width: int = 24) -> Text:
    """A phase's current against its limit: the bar's length is the magnitude (the limit at five sixths, a
    ``│``); import (``amps`` > 0) is solid, green to yellow to red as it nears and passes the limit; export
    (``amps`` < 0) is shaded and cyan (magenta past the limit), so the two never look alike."""
    magnitude = abs(amps)
    filled = round(min(magnitude, limit * 1.2) / (limit * 1.2) * width) if limit > 0 else 0
    marker = round(width / 1.2)
    exporting = amps < 0
    if exporting:
        style = "magenta" if magnitude > limit else "cyan"
    else:
        style = "red" if magnitude > limit else ("yellow" if magnitude > 0.9 * limit else "green")
    cell = EXPORT_CELL if exporting else IMPORT_CELL
    return Text("".join(cell if i < filled else ("│" if i == marker else "·") for i in range(width)), style=style)


def flow(amps_or_watts: float, unit: str, places: int = 1) -> str:
    """A signed grid value with its direction spelled out: ``+12.3 A import``, ``−4.0 A export``."""
    if abs(amps_or_watts) < 0.5 * 10 ** -places:
        return f"{0:.{places}f} {unit}"
    sign, word = ("+", "import") if amps_or_watts > 0 else ("−", "export")
    return f"{sign}{abs(amps_or_watts):.{places}f} {unit} {word}"


STOPPING = "stopping: the services stop cleanly, then the report so far is written (Ctrl-C again: quit at once)"


def render(view: LiveView, stopping: bool = False) -> Group:
    state = view.site.state
    scenario = view.scenario
    limit = scenario.grid.fuse
    head = Text.assemble(
        (f"{scenario.name}", "bold"), f"  {state.at.astimezone(scenario.start.tzinfo):%H:%M:%S}  ",
        f"speed {view.speed:g}×  ",
        ("trips " + str(view.site.fuse.trips), "bold red" if view.site.fuse.trips else "green"),
        f"  overload {view.site.fuse.overload_seconds:.0f}s",
    )
    progress = ProgressBar(total=1.0, completed=view.progress, width=60)
    phases = Table(title="grid per phase (A)", expand=False, box=None)
    phases.add_column("phase")
    phases.add_column("current", justify="right")
    phases.add_column(f"limit {limit:g} A ({IMPORT_CELL} import, {EXPORT_CELL} export)")
    phases.add_column("peak", justify="right")
    for phase, amps in state.grid_current.items():
        fuse = view.site.fuse.phases[phase]
        phases.add_row(phase, flow(amps, "A"), phase_bar(amps, limit), f"{fuse.peak:5.1f}")
    site = Table(box=None, title="site")
    site.add_column("")
    site.add_column("", justify="right")
    site.add_row("solar", f"{state.solar / 1000:5.2f} kW")
    site.add_row("house", f"{sum(state.house.values()) / 1000:5.2f} kW")
    site.add_row("grid", flow(sum(state.grid_power.values()) / 1000, "kW", 2))
    if state.battery_soc is not None:
        direction = "discharging" if state.battery_power > 0 else ("charging" if state.battery_power < 0 else "idle")
        site.add_row("battery", f"{abs(state.battery_power) / 1000:5.2f} kW {direction}  "
                     f"SOC {state.battery_soc:4.1f} %")
    if state.boiler_temperature is not None:
        site.add_row("boiler tank", f"{state.boiler_temperature:4.1f} °C")
    if state.appliances:
        site.add_row("running", ", ".join(state.appliances))
    loads = Table(title="loads", box=None)
    for col in ("load", "mode", "setpoint", "reason", "draw", "car"):
        loads.add_column(col)
    for load, amps in state.load_current.items():
        sp = view.recorder.latest.get(load)
        plug = view.site.chargers.get(load)
        car = ""
        if plug is not None and plug.ev is not None:
            car = f"{plug.ev.spec.name} {plug.ev.soc:4.1f} % ({plug.ev.spec.phases}φ)"
        elif plug is not None:
            car = "—"
        setpoint = "—" if sp is None else (f"{sp.current:4.1f} A" if sp.current or not sp.on else "on")
        loads.add_row(load, str(sp.mode) if sp else "?", setpoint, str(sp.reason) if sp else "waiting",
                      f"{amps:4.1f} A", car)
    services = Text("services: " + "  ".join(
        f"{name} {'●' if status == 'online' else '○'}" for name, status in sorted(view.services.items())))
    parts: list[object] = [head, progress, phases, site, loads, services]
    for load, plan in sorted(view.plans.items()):
        parts.insert(-1, Text(f"plan {load}: {plan.message}", style="cyan" if plan.feasible else "bold red"))
    for line in view.missing:
        parts.append(Text(f"! {line}", style="bold yellow"))
    parts.append(Text(STOPPING if stopping else "Ctrl-C: stop and write the report so far",
                      style="bold yellow" if stopping else "dim"))
    return Group(*parts)  # type: ignore[arg-type]


class Dashboard:
    """Call it with the view as often as you like; it draws at most ``fps`` times a second."""

    def __init__(self, out: TextIO | None = None, interactive: bool | None = None, log_every: float = 3.0) -> None:
        self.out = out or sys.stdout
        self.interactive = self.out.isatty() if interactive is None else interactive
        self.log_every = log_every
        self._live: Live | None = None
        self._last_line = 0.0
        self._stopping = False

    def __enter__(self) -> Dashboard:
        if self.interactive:
            self._live = Live(console=Console(file=self.out), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def __call__(self, view: LiveView) -> None:
        if self._live is not None:
            self._live.update(Panel(render(view, self._stopping), title="ampmq demo"))
            return
        if time.monotonic() - self._last_line < self.log_every and view.progress < 1.0:
            return
        self._last_line = time.monotonic()
        self.out.write(line(view) + "\n")
        self.out.flush()


    def stopping(self) -> None:
        """The run was asked to stop (Ctrl-C): say so now, the services take a moment to stop."""
        self._stopping = True
        if self._live is None:
            self.out.write(STOPPING + "\n")
            self.out.flush()


def line(view: LiveView) -> str:
    state = view.site.state
    phases = " ".join(f"{p}={a:+5.1f}A" for p, a in state.grid_current.items())
    loads = " ".join(
        f"{k}={a:4.1f}A[{view.recorder.latest[k].mode}/{view.recorder.latest[k].reason}]"
        if k in view.recorder.latest else f"{k}={a:4.1f}A" for k, a in state.load_current.items())
    soc = f" soc={state.battery_soc:4.1f}%" if state.battery_soc is not None else ""
    grid = sum(state.grid_power.values()) / 1000
    return (f"{state.at.astimezone(view.scenario.start.tzinfo):%H:%M} {view.progress:4.0%} {phases} "
            f"{'export' if grid <= -0.05 else 'import' if grid >= 0.05 else 'grid'}={abs(grid):4.1f}kW "
            f"solar={state.solar / 1000:4.1f}kW{soc} {loads} trips={view.site.fuse.trips}")
