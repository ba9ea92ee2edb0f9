"""Garbage collection for long-running services: what a service built at start leaves the collector's sight.

Measured at 1 000 chargers, each service's full collections took 140-220 ms of CPU while its start-up heap
(config, routes, a thousand adapters or charger sessions) was still in the collector's care; with that heap
frozen they took 3-100 ms. So a service process, once it has settled and again every ``refreeze`` seconds,
unfreezes, collects (cyclic garbage among what was frozen is still reclaimed, once per ``refreeze``) and
freezes its heap with :func:`gc.freeze`.

Frozen heap or not, each service then still made a full collection every 1-3 s, 100-150 ms of CPU each (up
to 400 ms of wall time on a busy machine: the tail of the reaction benchmark), over 110 000-250 000 objects
that were no garbage at all: the latest reading of 500 sites, the state of a thousand loads, each replaced
within seconds and freed by its reference count. Living longer than the young collections are apart (a few
milliseconds at 500 messages a second), they reach the oldest generation, and CPython collects that one
whenever it has grown by a quarter. So once settled, the oldest generation is collected at each refreeze
only (:func:`hold_full_collections`); the young ones, where nearly all cyclic garbage dies, stay automatic.

The same objects made the young collections slow too: CPython counts allocations *minus* deallocations, so
with most messages freed at once a young collection came about once a second and then walked the whole
working set of the last second (38 000 objects: every site's reading, calibration observations; 12-33 ms
in the allocator). Collected after every 100 net allocations and promoted after two young collections
(``YOUNG``, ``MIDDLE``), a survivor leaves the young generations within a fraction of a second and each
pause stays a few milliseconds: at 1 000 chargers, the allocator's pauses over 10 ms went from 19 to 1 per
20 s of trials, and the reaction p99 from 42-117 ms to 32-44 ms. Measured with the collector saving what it
freed: no service makes cyclic garbage in its steady state (0 objects in 10 s each), so what the refreeze
leaves to collect is the rare exception's.

Counting allocations still let the young generations grow unseen (:func:`collect_young` says how), so from
the first freeze on they are collected by the clock instead, every ``YOUNG_EVERY_S``.
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
#: Net allocations between young collections, and young collections a survivor stays young for (until the
#: heap is first frozen; from then on the young generations are collected by the clock, YOUNG_EVERY_S).
YOUNG = 100
MIDDLE = 1
#: Once settled, the young generations are collected every this many seconds, and never by allocation count.
YOUNG_EVERY_S = 0.02
#: A threshold the oldest generation's count never reaches: no automatic full collection.
_NEVER = 2**31 - 1


def hold_full_collections(young: int = YOUNG, middle: int = MIDDLE) -> None:
    """Collect the oldest generation only when told to (``gc.collect()``), never automatically; the young
    ones every ``young`` net allocations, promoting what survived ``middle`` + 1 of those."""
    gc.set_threshold(young, middle, _NEVER)


async def keep_frozen(settle: float = FIRST_FREEZE_S, refreeze: float = REFREEZE_S,
                      young_every: float = YOUNG_EVERY_S) -> None:
    """After ``settle`` seconds, and about every ``refreeze`` seconds after that: collect, then freeze the
    heap (each wait drawn a little longer or shorter, see FIRST_FREEZE_S); from the first freeze on, full
    collections are these only, and the young generations are collected every ``young_every`` seconds
    (:func:`collect_young`)."""
    await asyncio.sleep(settle * random.uniform(1.0, 1.25))
    hold_full_collections()
    young = asyncio.get_running_loop().create_task(collect_young(young_every), name="young-collections")
    try:
        while True:
            started = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            log.debug("heap frozen: %d objects, collect took %.0f ms", gc.get_freeze_count(),
                      (time.perf_counter() - started) * 1000)
            await asyncio.sleep(refreeze * random.uniform(0.9, 1.1))
    finally:
        young.cancel()
        gc.enable()  # at once: the cancelled task may never run again (its loop closing)


async def collect_young(every: float = YOUNG_EVERY_S) -> None:
    """Collect the young generations every ``every`` seconds, between two callbacks of the event loop, and
    never by allocation count (the collector is disabled while this runs; explicit collections still work).

    CPython counts allocations *minus* deallocations: a new reading that replaces an old one (freed from the
    oldest generation) leaves the count where it was, so the young generations grew with every message until
    other work pushed the count over ``YOUNG``, and the collection that came then walked all of it. At 1 000
    chargers the allocator spent 62 ms of each second collecting, in pauses of up to 32 ms (262 over 2 ms in
    30 s), inside the slowest reactions. By the clock, each collection walks only what was made since the one
    before and still lives: 24 ms a second, 0.4 ms a pause at the median, 16 over 2 ms in 30 s, the longest
    11 ms (every 50 ms: 45 ms a second, 2 ms a pause)."""
    gc.disable()
    try:
        while True:
            await asyncio.sleep(every)
            gc.collect(1)
    finally:
        gc.enable()


__all__ = ["FIRST_FREEZE_S", "MIDDLE", "REFREEZE_S", "YOUNG", "YOUNG_EVERY_S", "collect_young", "hold_full_collections",
           "keep_frozen"]
