"""Reports in moderation: a flood of the same trouble is counted, not published message by message (a charger
sending garbage in a loop, a device whose payloads all fail to parse): the gateway per charger, the load adapters
per load."""

from __future__ import annotations

from shared.clock import Clock


class Moderator:
    """Allows ``limit`` reports per ``window`` seconds; counts the rest until the window rolls over. A window
    begins with the first report after the last one ended (not at a fixed beat: a burst after a quiet spell is
    never split between two windows)."""

    __slots__ = ("_clock", "_count", "_start", "limit", "suppressed", "window")

    def __init__(self, clock: Clock, limit: int, window: float) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._start: float | None = None
        self._count = 0
        self.suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """Whether to report this one, and how many were held back in the window that just ended (to be
        summed up once, then forgotten)."""
        now = self._clock.monotonic()
        held_back = 0
        if self._start is None or now - self._start >= self.window:
            held_back, self.suppressed = self.suppressed, 0
            self._start, self._count = now, 0
        if self._count >= self.limit:
            self.suppressed += 1
            return False, held_back
        self._count += 1
        return True, held_back

    def summary(self, held_back: int, what: str) -> str:
        """The sentence that sums up ``held_back`` reports of ``what`` held back in a window."""
        return f"{held_back} more {what} in {self.window:g}s not reported one by one"
