"""``ampmq demo``: run a scenario from ``scenarios/`` on every service, watch it live, write the report."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from shared.config import AmpmqConfig

from .runner import EMBEDDED_MAX_SPEED, uses_embedded_broker
from .scenario import ScenarioError, load_scenario

DEFAULT_SCENARIO = "scenarios/sunny-day.yaml"


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
    from .report import write_reports
    from .runner import run_scenario

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
          f"(about {duration / speed:.0f} s)", flush=True)
    try:
        with Dashboard(interactive=interactive) as dashboard:
            result = asyncio.run(run_scenario(scenario, config, speed=speed, duration=duration, observe=dashboard,
                                              broker=args.broker))
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    kpis = result.kpis
    json_path, html_path = write_reports(Path(args.report_dir), kpis, result.view.recorder.series, scenario.start)
    print(f"trips: {kpis['trips']}  peak phase current: {kpis['peak_phase_current']:.1f} A "
          f"(limit {kpis['limit']:g} A)  overload: {kpis['overload_seconds']:.0f} s  "
          f"solar self-consumption: {kpis['solar_self_consumption'] or 0:.1%}")
    for load, entry in kpis["loads"].items():
        extra = f"  grid {entry['grid_kwh']:.2f} kWh" if "grid_kwh" in entry else ""
        print(f"  {load}: {entry['energy_kwh']:.2f} kWh, {entry['starts']} starts{extra}")
    for line in kpis["missing"]:
        print(f"! {line}")
    print(f"report: {html_path}  {json_path}")
    return 0
