"""The Mosquitto the tests, the benchmarks and the demo start: it runs ahead of the services where the machine
allows it (a lower niceness), and says at what niceness it runs."""

from __future__ import annotations

import os
import subprocess
import sys

from shared.broker import BROKER_NICENESS, Mosquitto, raise_priority


def _may_raise_priority() -> bool:
    """Whether this machine lets us lower a niceness (root, or CAP_SYS_NICE): tried on a child of our own."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        os.setpriority(os.PRIO_PROCESS, child.pid, -1)
        return True
    except OSError:
        return False
    finally:
        child.kill()
        child.wait()


def test_the_broker_runs_at_its_niceness_where_allowed_and_says_so() -> None:
    allowed = _may_raise_priority()
    with Mosquitto() as broker:
        assert broker._proc is not None
        running_at = os.getpriority(os.PRIO_PROCESS, broker._proc.pid)
        assert broker.niceness == running_at
        assert running_at == (BROKER_NICENESS if allowed else os.getpriority(os.PRIO_PROCESS, 0))


def test_raise_priority_reports_what_the_process_runs_at() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        got = raise_priority(child.pid, 5)  # a higher niceness is always allowed
        assert got == 5 == os.getpriority(os.PRIO_PROCESS, child.pid)
    finally:
        child.kill()
        child.wait()
