"""The heap is frozen once the service has settled, and frozen cyclic garbage is reclaimed at the next
refreeze."""

from __future__ import annotations

import asyncio
import gc
import weakref

from shared.heap import keep_frozen


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
