"""``ampmq allocate --snapshot FILE|-``: run the allocator core on one snapshot and print the allocation.

Prints the :class:`~shared.models.allocation.Allocation` as JSON, or with ``--explain`` a readable table.
``--now`` (ISO-8601 with a time zone) sets the decision time; by default the measurement's ``ts`` (or, with
no measurement, the current time). A snapshot that is not valid JSON or not a valid snapshot is one clear
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from shared.config import AmpmqConfig
from shared.models.allocation import Snapshot

from .core import allocate
from .core.explain import table


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "snapshot"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _parse_now(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"--now {text!r} has no time zone")
    return value.astimezone(UTC)


def run(args: argparse.Namespace, config: AmpmqConfig) -> int:
    source = args.snapshot
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"ampmq allocate: cannot read {source}: {exc.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"ampmq allocate: {source} is not UTF-8 text", file=sys.stderr)
        return 2
    try:
        snapshot = Snapshot.model_validate_json(text)
    except ValidationError as exc:
        kind = "not valid JSON" if any(e["type"] == "json_invalid" for e in exc.errors()) else "not a valid snapshot"
        print(f"ampmq allocate: {source} is {kind}: {_first_error(exc)}", file=sys.stderr)
        return 2
    try:
        if args.now:
            now = _parse_now(args.now)
        elif snapshot.measurement is not None:
            now = snapshot.measurement.ts
        else:
            now = datetime.now(UTC)
    except ValueError as exc:
        print(f"ampmq allocate: bad --now: {exc}", file=sys.stderr)
        return 2
    allocation = allocate(snapshot, now)
    if args.explain:
        print(table(allocation))
    else:
        print(allocation.model_dump_json(indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("allocate", help="run the allocator core on one snapshot (JSON) and print it")
    parser.add_argument("--snapshot", required=True, metavar="FILE", help="snapshot JSON file, or - for stdin")
    parser.add_argument("--explain", action="store_true", help="print a readable table instead of JSON")
    parser.add_argument("--now", default=None, help="decision time, ISO-8601 (default: the measurement's ts)")
    parser.set_defaults(handler=run)
