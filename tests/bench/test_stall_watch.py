"""bench/stall_watch.py, run as the reaction benchmark runs it: a process of its own that notes its priority
and writes its notes, in the services' trace format, when it is asked to stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared import trace

ROOT = Path(__file__).resolve().parents[2]


def test_the_watcher_writes_its_notes_when_stopped(tmp_path: Path) -> None:
    watcher = subprocess.Popen([sys.executable, "-m", "bench.stall_watch"], cwd=ROOT,
                               env={**os.environ, trace.ENV: str(tmp_path)})
    try:
        deadline = time.monotonic() + 20
        time.sleep(0.5)
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(max(1.0, deadline - time.monotonic())) == 128 + signal.SIGTERM
    finally:
        watcher.kill()
    notes = trace.read(tmp_path)
    assert list(notes) == ["machine"]
    priorities = [key for _, event, key in notes["machine"] if event == "priority"]
    assert len(priorities) == 1 and priorities[0].split()[0] in ("realtime", "nice", "normal")
    assert all(event in ("priority", "lag", "gc", "gc_end") for _, event, _ in notes["machine"])
    assert json.loads(next(tmp_path.glob("machine-*.trace.json")).read_text())["service"] == "machine"


def test_the_watcher_refuses_to_run_without_a_place_for_its_notes() -> None:
    env = {k: v for k, v in os.environ.items() if k != trace.ENV}
    done = subprocess.run([sys.executable, "-m", "bench.stall_watch"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 1
    assert trace.ENV in done.stderr
