"""Which of a decision's publications go out: only those whose content changed, and each at least every
``refresh`` seconds, so a retained setpoint is renewed long before it expires.

At 500 sites with meters reporting every second, republishing every unchanged setpoint and decision was
most of the allocator's (and the adapters') work: a thousand setpoints a second that said nothing new.
"""

from __future__ import annotations

from typing import Any

from shared.models import Setpoint, SiteDecision


class ChangeGate:
    """Remembers what went out on each topic and when (clock monotonic seconds)."""

    def __init__(self) -> None:
        self._sent: dict[str, tuple[Any, float]] = {}

    def passes(self, topic: str, content: Any, now: float, refresh: float) -> bool:
        """Whether to publish ``content`` on ``topic`` now; if so, it is remembered as sent."""
        last = self._sent.get(topic)
        if last is not None and last[0] == content and now - last[1] < refresh:
            return False
        self._sent[topic] = (content, now)
        return True

    def forget(self) -> None:
        """Let everything through once more (after a reconnect the broker may have lost what it held)."""
        self._sent.clear()


def setpoint_content(setpoint: Setpoint) -> dict[str, Any]:
    """What a load's adapter acts on: everything but the stamps that move with every decision."""
    return setpoint.model_dump(exclude={"ts", "valid_until"})


def decision_content(decision: SiteDecision) -> dict[str, Any]:
    """The decision without its stamp and smoothing state, and its pools and headroom to the whole ampere
    (a house's current wanders by tenths between readings; that alone is no news)."""
    content = decision.model_dump(exclude={"ts", "surplus_ema", "pools", "headroom"})
    content["pools"] = {name: {p: round(v) for p, v in per_phase.items()} for name, per_phase in decision.pools.items()}
    content["headroom"] = {p: round(v) for p, v in decision.headroom.items()}
    return content


__all__ = ["ChangeGate", "decision_content", "setpoint_content"]
