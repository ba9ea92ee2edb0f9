"""Reports in moderation (the gateway per charger, the load adapters per load): ``limit`` per window, the rest
counted and summed up once, with the first report of the next window."""

from __future__ import annotations

from shared.moderation import Moderator
from tests.gateway.conftest import SteppedClock


def test_the_limit_per_window_then_one_summary_with_the_next_report() -> None:
    clock = SteppedClock()
    moderator = Moderator(clock, limit=3, window=10.0)
    assert [moderator.allow() for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    clock.seconds += 9.9
    assert moderator.allow() == (False, 0)  # still the same window
    clock.seconds += 0.1
    assert moderator.allow() == (True, 3)  # a new window: the three held back, said once
    assert moderator.allow() == (True, 0)


def test_a_burst_after_a_quiet_spell_is_never_split_between_two_windows() -> None:
    """The window begins with the first report, not when the moderator was made: a burst that starts 9.9 s in
    gets its limit, no more."""
    clock = SteppedClock()
    moderator = Moderator(clock, limit=3, window=10.0)
    clock.seconds += 9.9
    first = [moderator.allow()[0] for _ in range(3)]
    clock.seconds += 0.2
    assert first + [moderator.allow()[0] for _ in range(3)] == [True] * 3 + [False] * 3
