"""``ampmq allocate`` as a user runs it: a subprocess on a snapshot file or stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from services.allocator.core import allocate
from shared.models.allocation import Allocation

from .kit import NOW, Scenario, ev, grid, plug, site

#: The installed console script, next to the interpreter running the tests.
AMPMQ = [str(Path(sys.executable).with_name("ampmq"))]


def _snapshot_file(tmp_path: Path) -> tuple[Path, Scenario]:
    case = Scenario(
        "two EVs and a plug",
        site(),
        grid(10, 10, 10),
        [ev("ev1", prio=1), ev("ev2", on="B", hi=32, prio=2), plug("plug", 2300, on="C")],
        {},
    )
    path = tmp_path / "snapshot.json"
    path.write_text(case.snapshot().model_dump_json())
    return path, case


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AMPMQ, "allocate", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_prints_the_allocation_as_json(tmp_path: Path) -> None:
    path, case = _snapshot_file(tmp_path)
    done = _run("--snapshot", str(path))
    assert done.returncode == 0, done.stderr
    printed = Allocation.model_validate_json(done.stdout)
    expected = allocate(case.snapshot(), NOW)
    assert printed.model_dump() == expected.model_dump()
    assert {d.load: d.current for d in printed.decisions} == {"ev1": 8.0, "ev2": 6.0, "plug": 0.0}


def test_reads_stdin_and_takes_now(tmp_path: Path) -> None:
    path, _ = _snapshot_file(tmp_path)
    later = "2026-06-01T12:05:00+00:00"  # five minutes later: the grid readings are stale
    done = _run("--snapshot", "-", "--now", later, stdin=path.read_text())
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["stale"] is True
    assert {d["reason"] for d in printed["decisions"]} == {"stale_data"}


def test_explain_prints_a_table(tmp_path: Path) -> None:
    path, _ = _snapshot_file(tmp_path)
    done = _run("--snapshot", str(path), "--explain")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:5] == ["load", "mode", "amps", "phases", "reason"]
    ev1 = next(line for line in lines if line.startswith("ev1 "))
    assert "8.0" in ev1 and "fuse_limit" in ev1
    assert any(line.startswith("headroom") for line in lines)
    assert any(line.startswith("house") for line in lines)


def test_bad_json_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _run("--snapshot", "-", stdin="{not json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "not valid JSON" in done.stderr


def test_invalid_snapshot_names_the_field(tmp_path: Path) -> None:
    path, _ = _snapshot_file(tmp_path)
    data = json.loads(path.read_text())
    data["settings"]["fuse_limit"] = "25"
    done = _run("--snapshot", "-", stdin=json.dumps(data))
    assert done.returncode == 2
    assert "settings.fuse_limit" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_file_exit_2(tmp_path: Path) -> None:
    done = _run("--snapshot", str(tmp_path / "nope.json"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr


def test_binary_file_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.bin"
    path.write_bytes(b"\xff\xfe\x00garbage")
    done = _run("--snapshot", str(path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_now_exit_2(tmp_path: Path) -> None:
    path, _ = _snapshot_file(tmp_path)
    for bad in ("yesterday", "2026-06-01T12:00:00"):  # not ISO; no time zone
        done = _run("--snapshot", str(path), "--now", bad)
        assert done.returncode == 2, bad
        assert "--now" in done.stderr
