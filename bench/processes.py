"""Stopping the service processes a benchmark started."""

from __future__ import annotations

import signal
import subprocess


def stop(process: subprocess.Popen[bytes], timeout: float, sig: int = signal.SIGTERM) -> None:
    """Ask ``process`` to stop with ``sig``; kill it when it has not stopped within ``timeout`` seconds."""
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
