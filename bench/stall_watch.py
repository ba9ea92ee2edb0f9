"""The machine itself, watched while the reaction benchmark runs: was a slow trial ampmq's, or was nothing run?

A process of its own asks for the highest priority the operating system gives it (``SCHED_FIFO``: it runs
the moment it wakes, ahead of every ordinary process; where that is not allowed, the best ``nice``; failing
that, as it is) and sleeps two milliseconds at a time. Each wake-up more than :data:`NOTED_MS` late is noted
as a ``lag`` of the ``machine`` in the services' trace format (:mod:`shared.trace`), so ``bench/hops.py``
shows it beside each slow trial.

At real-time priority a late wake-up cannot be another process of this machine holding the CPU: it is the
machine itself not running (the hypervisor gave its virtual CPUs to someone else, or the kernel was busy
with itself). A slow trial that such a stall overlaps was slow whatever ampmq did; one that none overlaps
is ampmq's to explain. It costs five hundred short wake-ups a second: about 1 % of one core.

Run: ``python -m bench.stall_watch`` with ``AMPMQ_TRACE`` naming the trace directory; it stops (and writes
its notes) on SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from types import FrameType

from shared import trace
from shared.broker import raise_priority as lower_niceness

SERVICE = "machine"
EVERY_S = 0.002
#: A wake-up later than this is noted (ms).
NOTED_MS = 3.0


def raise_priority() -> str:
    """The best scheduling this process may have: ``realtime``, ``nice <n>``, or ``normal``."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(os.sched_get_priority_min(os.SCHED_FIFO)))
        return "realtime"
    except (OSError, AttributeError):
        pass
    niceness = lower_niceness(os.getpid(), -20)
    return "normal" if niceness is None or niceness >= 0 else f"nice {niceness}"


def watch() -> None:
    """Note late wake-ups until interrupted."""
    noted = NOTED_MS / 1000
    while True:
        due = time.perf_counter() + EVERY_S
        time.sleep(EVERY_S)
        late = time.perf_counter() - due
        if late > noted:
            trace.note("lag", f"{late * 1000:.1f}")


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    if not os.environ.get(trace.ENV):
        sys.exit(f"{trace.ENV} must name the directory the notes go to")
    trace.start(SERVICE)
    trace.note("priority", raise_priority())
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT: stop cleanly, the notes are written as it exits
        watch()


if __name__ == "__main__":
    main()
