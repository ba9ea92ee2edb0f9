"""Which of a decision's publications go out: only those whose content changed, and each at least every
``refresh`` seconds, so a retained setpoint is renewed long before it expires.

At 500 sites with meters reporting every second, republishing every unchanged setpoint and decision was
most of the allocator's (and the adapters') work: a thousand setpoints a second that said nothing new.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from shared.models import Allocation, LoadDecision


class ChangeGate:
    """Remembers what went out on each topic and until when it stands (clock monotonic seconds).

    An unchanged publication is renewed after between ``SPREAD`` × ``refresh`` and ``refresh`` (drawn each
    time): sites started together would otherwise renew all their setpoints and decisions in the same second
    (at 500 sites, 1 500 messages at once every ``refresh``, which the allocator reads back and every adapter
    handles), and a reaction caught in that second waited for them."""

    SPREAD = 0.75

    def __init__(self, draw: Callable[[], float] = random.random) -> None:
        self._sent: dict[str, tuple[Any, float]] = {}
        self._draw = draw

    def passes(self, topic: str, content: Any, now: float, refresh: float) -> bool:
        """Whether to publish ``content`` on ``topic`` now; if so, it is remembered as sent."""
        last = self._sent.get(topic)
        if last is not None and last[0] == content and now < last[1]:
            return False
        self._sent[topic] = (content, now + refresh * (self.SPREAD + (1 - self.SPREAD) * self._draw()))
        return True

    def forget(self) -> None:
        """Let everything through once more (after a reconnect the broker may have lost what it held)."""
        self._sent.clear()


def setpoint_content(decision: LoadDecision, voltage: float) -> tuple[Any, ...]:
    """What a load's setpoint says, from the decision it is built from (no model built for a setpoint that
    will not go out): everything but the stamps that move with every decision."""
    return (decision.current, tuple(decision.phases), decision.on, decision.available, decision.mode,
            decision.reason, decision.message, decision.memory, voltage)


def decision_content(allocation: Allocation) -> tuple[Any, ...]:
    """What the site decision says, without its stamp and smoothing state, and its pools and headroom to the
    whole ampere (a house's current wanders by tenths between readings; that alone is no news)."""
    pools = tuple((name, tuple((p, round(v)) for p, v in per_phase.items()))
                  for name, per_phase in allocation.pools.items())
    headroom = tuple((p, round(v)) for p, v in allocation.headroom.items())
    limits = tuple((d.load, d.reason) for d in allocation.decisions)
    return (pools, headroom, limits, allocation.stale, allocation.message,
            allocation.memory.battery_full_latched, allocation.memory.battery_above_target,
            allocation.memory.battery_saturated_charge is not None)


__all__ = ["ChangeGate", "decision_content", "setpoint_content"]
