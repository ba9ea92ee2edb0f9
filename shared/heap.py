"""Garbage collection for long-running services: what a service built at start leaves the collector's sight.

Measured at 1 000 chargers, each service's full collections took 140-220 ms of CPU while its start-up heap
(config, routes, a thousand adapters or charger sessions) was still in the collector's care; with that heap
frozen they took 3-100 ms. So a service process, once it has settled and again every ``refreeze`` seconds,
unfreezes, collects (cyclic garbage among what was frozen is still reclaimed, once per ``refreeze``) and
freezes its heap with :func:`gc.freeze`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time

log = logging.getLogger("ampmq.heap")


#: The first freeze comes FIRST_FREEZE_S after start, plus up to a quarter more; each later one
#: REFREEZE_S after the one before, give or take a tenth: the services of one host, started together, do
#: not all pause for their collection at the same moment.
FIRST_FREEZE_S = 15.0
REFREEZE_S = 600.0


async def keep_frozen(settle: float = FIRST_FREEZE_S, refreeze: float = REFREEZE_S) -> None:
    """After ``settle`` seconds, and about every ``refreeze`` seconds after that: collect, then freeze the
    heap (each wait drawn a little longer or shorter, see FIRST_FREEZE_S)."""
    await asyncio.sleep(settle * random.uniform(1.0, 1.25))
    while True:
        started = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.debug("heap frozen: %d objects, collect took %.0f ms", gc.get_freeze_count(),
                  (time.perf_counter() - started) * 1000)
        await asyncio.sleep(refreeze * random.uniform(0.9, 1.1))


__all__ = ["FIRST_FREEZE_S", "REFREEZE_S", "keep_frozen"]
