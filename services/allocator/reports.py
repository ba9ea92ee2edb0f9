"""Reports that must not flood: the same problem from the same origin goes out once per interval.

A meter whose clock runs an hour ahead sends a reading a second; a client publishing to a site nobody
configured may do so thousands of times. Each gets one report, then one per ``interval`` while it lasts.
The memory is bounded: past ``capacity`` keys the oldest are forgotten (they may then be reported again).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class ReportThrottle:
    def __init__(self, interval: float, capacity: int = 1024) -> None:
        self.interval = interval
        self.capacity = capacity
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def due(self, key: Hashable, now: float) -> bool:
        """Whether a report about ``key`` may go out at ``now`` (monotonic seconds); if so, it is counted."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        return True
