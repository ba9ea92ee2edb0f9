"""Stopping the service processes a benchmark started."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable
from typing import Any


def stop(process: subprocess.Popen[Any], timeout: float, sig: int = signal.SIGTERM) -> None:
    """Ask ``process`` to stop with ``sig``; kill it when it has not stopped within ``timeout`` seconds."""
    stop_all([process], timeout, sig)


def stop_all(processes: Iterable[subprocess.Popen[Any]], timeout: float, sig: int = signal.SIGINT) -> None:
    """Ask every process to stop with ``sig`` at once, then wait for each (up to ``timeout`` seconds), killing
    one that has not stopped. SIGINT by default: a service writes its trace as it stops cleanly."""
    processes = list(processes)
    for process in processes:
        process.send_signal(sig)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
