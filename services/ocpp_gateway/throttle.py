"""Failed logins slow down the next ones: a lockout that doubles with every failure, per key (a charge
point id, a remote address), in a table that never grows past a fixed number of keys.

The first ``free_failures`` failures cost nothing; each one after that locks the key out for
``base_delay`` seconds, doubling up to ``max_delay``. A key that stays quiet for ``forget_after`` seconds
past its lockout starts afresh, and a success forgets it at once. When the table is full, the key used
least recently is dropped (a least-recently-used cap), so a flood of addresses costs a bounded amount of
memory: at worst, a dropped key starts afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from shared.clock import Clock


@dataclass(slots=True)
class _Failures:
    count: int
    locked_until: float
    last: float


class LoginThrottle:
    """Exponential lockout after failed logins, per key, in an LRU-capped table."""

    def __init__(self, clock: Clock, *, max_keys: int, free_failures: int = 3, base_delay: float = 1.0,
                 max_delay: float = 300.0, forget_after: float = 900.0) -> None:
        self._clock = clock
        self.max_keys = max_keys
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self._table: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def locked_for(self, key: str) -> float:
        """Seconds ``key`` is still locked out (0 when it may try)."""
        entry = self._table.get(key)
        if entry is None:
            return 0.0
        now = self._clock.monotonic()
        if now - max(entry.locked_until, entry.last) > self.forget_after:
            del self._table[key]
            return 0.0
        return max(0.0, entry.locked_until - now)

    def failed(self, key: str) -> float:
        """Count a failed login of ``key``; returns the lockout it now has, in seconds."""
        now = self._clock.monotonic()
        entry = self._table.pop(key, None)
        if entry is None or now - max(entry.locked_until, entry.last) > self.forget_after:
            entry = _Failures(0, now, now)
        entry.count += 1
        entry.last = now
        over = entry.count - self.free_failures
        delay = min(self.max_delay, self.base_delay * 2 ** min(over - 1, 64)) if over > 0 else 0.0
        entry.locked_until = now + delay
        self._table[key] = entry  # the most recently used key goes to the end
        while len(self._table) > self.max_keys:
            self._table.popitem(last=False)
        return delay

    def succeeded(self, key: str) -> None:
        """A successful login: ``key`` starts afresh."""
        self._table.pop(key, None)
