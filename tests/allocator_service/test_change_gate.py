"""The change gate: news goes out at once, an unchanged publication is renewed within ``refresh``, and
renewals of topics published together spread over the last quarter of it."""

from __future__ import annotations

import random

from services.allocator.change_gate import ChangeGate


def test_a_change_passes_at_once_and_the_same_content_waits_for_its_renewal() -> None:
    gate = ChangeGate(draw=lambda: 0.0)  # the earliest renewal: SPREAD x refresh
    assert gate.passes("t", 1, now=0.0, refresh=10.0)
    assert not gate.passes("t", 1, now=7.4, refresh=10.0)
    assert gate.passes("t", 2, now=7.4, refresh=10.0)  # news
    assert not gate.passes("t", 2, now=14.8, refresh=10.0)
    assert gate.passes("t", 2, now=14.9, refresh=10.0)  # renewed after 7.5 s


def test_no_renewal_comes_later_than_refresh() -> None:
    gate = ChangeGate(draw=lambda: 0.999999)
    assert gate.passes("t", 1, now=0.0, refresh=10.0)
    assert not gate.passes("t", 1, now=9.99, refresh=10.0)
    assert gate.passes("t", 1, now=10.0, refresh=10.0)


def test_topics_published_together_are_renewed_apart() -> None:
    """500 sites started together: their renewals leave the second they were sent in and spread out."""
    gate = ChangeGate(draw=random.Random(7).random)
    topics = [f"site-{n}" for n in range(500)]
    renewed_at: dict[str, float] = {}
    for topic in topics:
        assert gate.passes(topic, "same", now=0.0, refresh=10.0)
    for tick in range(1, 1001):  # decisions every 10 ms for 10 s
        now = tick / 100
        for topic in topics:
            if topic not in renewed_at and gate.passes(topic, "same", now=now, refresh=10.0):
                renewed_at[topic] = now
    assert len(renewed_at) == 500
    per_second = [sum(1 for t in renewed_at.values() if s < t <= s + 1) for s in range(7, 10)]
    assert max(per_second) < 250, per_second  # not all in one second
    assert min(renewed_at.values()) >= 7.5
