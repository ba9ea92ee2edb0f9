"""``ampmq demo``: run a scenario from ``scenarios/`` on every service, watch it live, write the report.

Ctrl-C stops the simulated day where it is: the services stop cleanly, the report of the time reached is
written (marked partial) and the exit code is 130; a second Ctrl-C quits at once without a report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shared.config import AmpmqConfig

from .comparison import phase_switching_gain, without_phase_switching
from .runner import EMBEDDED_MAX_SPEED, uses_embedded_broker
from .scenario import Scenario, ScenarioError, load_scenario

if TYPE_CHECKING:
    from .dashboard import Dashboard
    from .runner import RunResult

DEFAULT_SCENARIO = "scenarios/sunny-day.yaml"
#: The exit code of a run stopped by Ctrl-C (128 + SIGINT, as a shell reports it); the report is written.
INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser("demo", help="simulate a site's day on every service, live, and write a report")
    demo.add_argument("--scenario", default=DEFAULT_SCENARIO, help=f"scenario YAML (default {DEFAULT_SCENARIO})")
    demo.add_argument("--speed", type=float, default=None, help="simulated seconds per real second "
                      "(default: the scenario's, 360 for the sunny day)")
    demo.add_argument("--duration", type=float, default=None, help="simulated seconds to run (default: the scenario's)")
    demo.add_argument("--report-dir", default=".", help="where demo-report.html and demo-report.json go")
    demo.add_argument("--no-dashboard", action="store_true", help="a line log instead of the live dashboard")
    demo.add_argument("--verbose", action="store_true", help="keep the services' log (warnings and up) on screen")
    demo.add_argument("--broker", choices=("auto", "embedded", "mosquitto"), default="auto",
                      help="auto (default): a private Mosquitto when installed, else the embedded amqtt broker "
                      f"(then at most {EMBEDDED_MAX_SPEED:g}x unless --speed says otherwise); embedded; mosquitto. "
                      "Ignored when AMPMQ_MQTT_URL names a broker")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace, config: AmpmqConfig) -> int:
    try:
        from .dashboard import Dashboard
    except ImportError as exc:  # rich is a demo extra, not in the runtime image
        print(f"ampmq demo needs the demo extra ({exc.name} is missing): pip install 'ampmq[demo]'", file=sys.stderr)
        return 2

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.speed is not None and not args.speed > 0:
        print("--speed must be positive", file=sys.stderr)
        return 2
    if args.duration is not None and not args.duration > 0:
        print("--duration must be positive", file=sys.stderr)
        return 2
    interactive = sys.stdout.isatty() and not args.no_dashboard
    levels = {name: logging.getLogger(name).level for name in ("", "asyncio")}
    if not args.verbose:  # the dashboard (or the line log) owns the screen: only errors go to the log
        logging.getLogger().setLevel(logging.ERROR)
        # cancelled publishes of the stopping services end up as "exception was never retrieved" noise
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    speed = args.speed or scenario.speed
    if args.speed is None and uses_embedded_broker(args.broker, config) and speed > EMBEDDED_MAX_SPEED:
        print(f"the embedded broker carries a few hundred messages a second: running at {EMBEDDED_MAX_SPEED:g}x "
              "(install mosquitto for the scenario's speed)", flush=True)
        speed = EMBEDDED_MAX_SPEED
    duration = args.duration or scenario.duration
    print(f"ampmq demo: {scenario.name}: {duration / 3600:.1f} simulated hours at {speed:g}x "
          f"(about {duration / speed:.0f} s; Ctrl-C stops it and writes the report so far)", flush=True)
    try:
        with Dashboard(interactive=interactive) as dashboard:
            result = asyncio.run(_run_until_interrupted(scenario, config, speed, duration, dashboard, args.broker))
        baseline = without_phase_switching(scenario)
        if baseline is not None and not result.kpis["partial"]:
            print("ampmq demo: the same day once more with phase switching off, to measure what it gained "
                  f"(about {duration / speed:.0f} s; Ctrl-C skips it)", flush=True)
            with Dashboard(interactive=interactive) as dashboard:
                other = asyncio.run(_run_until_interrupted(baseline, config, speed, duration, dashboard, args.broker))
            if not other.kpis["partial"]:
                result.kpis["phase_switching_gain"] = phase_switching_gain(scenario, result.kpis, other.kpis)
    except KeyboardInterrupt:  # before the run had its own handler, or a second Ctrl-C while it stopped
        print("\nampmq demo: stopped; no report written", flush=True)
        return INTERRUPTED
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    with _sigint_ignored():  # the run is over: a late Ctrl-C must not cut the report short
        return _report(result, scenario, Path(args.report_dir))


def _report(result: RunResult, scenario: Scenario, directory: Path) -> int:
    """Write both reports and the summary lines; the exit code (``INTERRUPTED`` for a partial run)."""
    from .comparison import compare
    from .report import write_reports

    kpis = result.kpis
    if not kpis["partial"]:
        # the same day under the core and under evcc's default timers, on the closed-loop physics (about a second)
        kpis["comparison"] = compare(scenario)
    json_path, html_path = write_reports(directory, kpis, result.view.recorder.series, scenario.start)
    print(f"trips: {kpis['trips']}  peak phase current: {kpis['peak_phase_current']:.1f} A "
          f"(limit {kpis['limit']:g} A)  overload: {kpis['overload_seconds']:.0f} s  "
          f"solar self-consumption: {kpis['solar_self_consumption'] or 0:.1%}")
    for load, entry in kpis["loads"].items():
        extra = f"  grid {entry['grid_kwh']:.2f} kWh" if "grid_kwh" in entry else ""
        print(f"  {load}: {entry['energy_kwh']:.2f} kWh, {entry['starts']} starts{extra}")
    for load, gain in kpis.get("phase_switching_gain", {}).items():
        print(f"  {load}: phase switching gained {gain['gained_kwh']:+.2f} kWh ({gain['with_kwh']:.2f} kWh with it, "
              f"{gain['without_kwh']:.2f} kWh on the same day without)")
    for line in kpis["missing"]:
        print(f"! {line}")
    if kpis["partial"]:
        print(f"partial report: stopped at {kpis['reached'][11:16]} simulated time, after "
              f"{kpis['simulated_seconds'] / 3600:.1f} of {kpis['planned_seconds'] / 3600:.1f} simulated hours")
    print(f"report: {html_path}  {json_path}", flush=True)
    return INTERRUPTED if kpis["partial"] else 0


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to guard
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def _run_until_interrupted(scenario: Scenario, config: AmpmqConfig, speed: float, duration: float,
                                 dashboard: Dashboard, broker: str) -> RunResult:
    """Run the scenario; the first Ctrl-C (or SIGTERM) ends the simulated day where it is, stops the services
    cleanly and returns what was recorded. A second Ctrl-C gets Python's own handling back: a
    ``KeyboardInterrupt`` that ends the run without a report (the broker and services still stopped)."""
    from .runner import run_scenario

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            dashboard.stopping()
        loop.remove_signal_handler(signal.SIGINT)

    signals = [sig for sig in (signal.SIGINT, signal.SIGTERM) if _handle(loop, sig, on_signal)]
    try:
        return await run_scenario(scenario, config, speed=speed, duration=duration, observe=dashboard,
                                  broker=broker, stop=stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _handle(loop: asyncio.AbstractEventLoop, sig: signal.Signals, handler: Callable[[], None]) -> bool:
    try:
        loop.add_signal_handler(sig, handler)
    except (NotImplementedError, RuntimeError):  # not on this platform / not the main thread
        return False
    return True
