"""The heap is frozen once the service has settled, and frozen cyclic garbage is reclaimed at the next
refreeze; from then on the oldest generation is collected at the refreezes only."""

from __future__ import annotations

import asyncio
import gc
import weakref

from shared.heap import MIDDLE, YOUNG, hold_full_collections, keep_frozen


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector reclaims it


async def test_the_heap_is_frozen_after_settling_and_frozen_garbage_is_reclaimed_later() -> None:
    gc.unfreeze()  # whatever an earlier test left frozen
    node = Node()
    gone = weakref.ref(node)
    task = asyncio.get_running_loop().create_task(keep_frozen(settle=0.05, refreeze=0.3))
    try:
        await asyncio.sleep(0.15)
        assert gc.get_freeze_count() > 0 and gone() is not None  # frozen with the rest of the heap
        del node
        gc.collect()
        assert gone() is not None  # a collection does not see frozen objects...
        await asyncio.sleep(0.4)
        assert gone() is None  # ...the refreeze collects first, and the cycle is gone
    finally:
        task.cancel()
        gc.unfreeze()


async def test_after_settling_long_lived_objects_bring_no_automatic_full_collection() -> None:
    thresholds = gc.get_threshold()
    task = asyncio.get_running_loop().create_task(keep_frozen(settle=0.01, refreeze=60))
    try:
        await asyncio.sleep(0.1)
        full_before = gc.get_stats()[2]["collections"]
        kept = [[Node() for _ in range(1000)] for _ in range(300)]  # 300 000 survivors: the oldest gen grows
        assert len(kept) == 300
        assert gc.get_stats()[2]["collections"] == full_before
        gc.collect()  # an explicit one still runs
        assert gc.get_stats()[2]["collections"] == full_before + 1
    finally:
        task.cancel()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_without_the_hold_the_same_survivors_bring_full_collections() -> None:
    """The control of the test above: CPython's own policy does collect the oldest generation here."""
    thresholds = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        gc.collect()
        full_before = gc.get_stats()[2]["collections"]
        kept = [[Node() for _ in range(1000)] for _ in range(300)]
        assert len(kept) == 300
        assert gc.get_stats()[2]["collections"] > full_before
        hold_full_collections()
        assert gc.get_threshold()[:2] == (YOUNG, MIDDLE)
    finally:
        gc.set_threshold(*thresholds)


async def test_once_settled_the_young_generations_are_collected_by_the_clock_not_by_allocations() -> None:
    """Allocation counts no longer start a collection (the count ignored what replaced what, and the young
    generations grew until a long pause); every ``young_every`` a young collection runs, and reclaims a cycle
    made meanwhile. Cancelled, the collector is CPython's own again."""
    task = asyncio.get_running_loop().create_task(keep_frozen(settle=0.01, refreeze=60, young_every=0.05))
    try:
        await asyncio.sleep(0.1)
        assert not gc.isenabled()
        young_before = gc.get_stats()[0]["collections"]
        middle_before = gc.get_stats()[1]["collections"]
        garbage = [[Node() for _ in range(100)] for _ in range(100)]  # 10 000 cycles: would have been 100 collections
        del garbage
        assert gc.get_stats()[0]["collections"] == young_before  # none started by the allocations
        node = Node()
        gone = weakref.ref(node)
        del node
        await asyncio.sleep(0.3)
        assert gone() is None  # a timed young collection reclaimed it
        assert 3 <= gc.get_stats()[1]["collections"] - middle_before <= 8  # about one per 50 ms
    finally:
        task.cancel()
        await asyncio.sleep(0)
        gc.unfreeze()
    assert gc.isenabled()
