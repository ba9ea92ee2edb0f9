"""``python -m bench [--quick] [names...]``: run the benchmarks, write bench/results.json and a markdown table.

Each benchmark module exposes ``run(quick: bool) -> dict``; latencies are reported beside floors measured in
the same run (an MQTT round trip and a websocket round trip), so the ratio shows what ampmq itself adds.
A benchmark fails (exit 1) only when a result is wrong: a lost message, a setpoint that never arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.broker import Mosquitto

from . import floors

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["allocator", "allocator_service", "meter_bridge", "gateway", "reaction", "scale", "quality"]


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}


def flatten(prefix: str, value: Any, rows: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), inner, rows)
    else:
        rows.append((prefix, json.dumps(value)))


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    flatten("", results, rows)
    return "\n".join(["| figure | value |", "| --- | --- |", *(f"| `{k}` | {v} |" for k, v in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("names", nargs="*", default=BENCHMARKS, help=f"any of {BENCHMARKS}")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    with Mosquitto() as broker:
        results["floors"] = asyncio.run(floors.measure(broker.url))
    failed = []
    for name in args.names:
        started = time.perf_counter()
        print(f"bench {name} ...", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            results[name] = module.run(quick=args.quick)
            if results[name].get("wrong"):  # a lost message, a setpoint that never arrived: a wrong result
                failed.append(name)
        except Exception as exc:
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        results[name]["wall_s"] = round(time.perf_counter() - started, 1)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = table(results)
    (HERE / "results.md").write_text(markdown + "\n")
    print(markdown)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
