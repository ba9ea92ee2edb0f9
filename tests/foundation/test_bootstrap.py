"""The bootstrap behind ``make demo`` and ``make test`` says what it is doing before each slow step, so a
person on a fresh machine does not take a minute of silence for a hang. Read from ``make -n`` (what make
would run, in order) for a virtualenv that does not exist yet: running it for real takes a minute."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_each_slow_bootstrap_step_is_announced_first(tmp_path: Path) -> None:
    venv = tmp_path / "fresh-venv"
    plan = subprocess.run(["make", "-n", f"VENV={venv}", "venv"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.splitlines()
    creates = next(i for i, line in enumerate(plan) if "-m venv" in line)
    installs = next(i for i, line in enumerate(plan) if "pip install" in line)
    # the virtualenv is created in a line that first says so (the same shell line: only when it is missing)
    assert "echo" in plan[creates] and "creating" in plan[creates]
    assert plan[creates].index("echo") < plan[creates].index("-m venv")
    # the install is announced, with how long it takes, before pip's first (quiet) run
    announced = [line for line in plan[:installs] if line.startswith("echo")]
    assert any("installing ampmq" in line and "minute" in line for line in announced), plan
