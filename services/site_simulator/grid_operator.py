"""The grid operator's control box of a scenario (§14a EnWG and the like): it sends the site's limit over
MQTT on ``<site>/grid-limit/set`` every ``heartbeat`` simulated seconds — the limit inside a dimming window
(valid to the window's end), no limit outside — and says nothing while it is ``silent``, so the allocator's
fallback shows. The allocator's policy for it (required, timeout, fallback) comes from the same spec
(:func:`allocator_policy`).

.. code-block:: yaml

    grid_operator:
      heartbeat: 60            # simulated s between two signals
      signal_timeout: 300      # the allocator falls back after this much silence
      fallback_cap_w: 4200
      windows: [{start: "17:30", end: "19:00", controllable_cap_w: 4200}]
      silent: [["20:00", "20:30"]]
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from shared.clock import Clock
from shared.models import GridLimitSet
from shared.mqtt import Runtime
from shared.topics import Topics

from .scenario import GridOperatorSpec


def allocator_policy(spec: GridOperatorSpec) -> dict[str, Any]:
    """The allocator's ``grid_limits`` entry for the site."""
    return {"required": spec.required, "signal_timeout": spec.signal_timeout,
            "fallback": {"controllable_cap_w": spec.fallback_cap_w}}


def _within(local: time, start: time, end: time) -> bool:
    return start <= local < end if start <= end else (local >= start or local < end)


def signal_at(spec: GridOperatorSpec, now: datetime, zone: tzinfo | None) -> GridLimitSet | None:
    """What the box sends at ``now`` (None: it is silent)."""
    local = now.astimezone(zone)
    clock = local.time()
    if any(_within(clock, a, b) for a, b in spec.silent):
        return None
    for w in spec.windows:
        if _within(clock, w.start, w.end):
            end = datetime.combine(local.date(), w.end, local.tzinfo)
            if end <= local:
                end += timedelta(days=1)
            return GridLimitSet(controllable_cap_w=w.controllable_cap_w, import_limit_w=w.import_limit_w,
                                valid_until=end, source="control-box", ts=now)
    return GridLimitSet(source="control-box", ts=now)


async def run_control_box(spec: GridOperatorSpec, runtime: Runtime, topics: Topics, site: str, clock: Clock,
                          zone: tzinfo | None, sent: list[GridLimitSet]) -> None:
    """Send the box's signal every heartbeat until cancelled; each one sent is appended to ``sent``."""
    while True:
        signal = signal_at(spec, clock.now(), zone)
        if signal is not None:
            await runtime.publish(topics.grid_limit_set(site), signal)
            sent.append(signal)
        await clock.sleep(spec.heartbeat)
