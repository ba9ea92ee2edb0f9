"""The standing code rules, checked in CI: ruff clean everywhere, mypy --strict on the contract and the
allocator core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    done = run(str(BIN / "ruff"), "check", ".")
    assert done.returncode == 0, done.stdout[-4000:]


def test_mypy_strict_on_shared_and_allocator_core() -> None:
    done = run(str(BIN / "mypy"), "--strict", "shared", "services/allocator/core")
    assert done.returncode == 0, done.stdout[-4000:]
