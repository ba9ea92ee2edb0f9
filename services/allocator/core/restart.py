"""Restart hysteresis: a load that was paused restarts only with room for its minimum plus a margin.

A car paused by the fuse while the oven runs would otherwise restart the moment the room is back to exactly
its minimum — and be paused again by the next wobble of the house load, every ``min_pause`` (the
winter-evening scenario's Standard cars). So a load that ran and was paused (``LoadMemory.paused_since``)
restarts only when the hard limits (fuse, circuits, import, imbalance) leave it ``RESTART_MARGIN`` more than
its minimum before anyone else takes anything. Known before the allocation, like min_pause: a load held back
does not compete, so the room goes to the others. A first start, a user's mode change and must-run are
exempt; the surplus has its own hysteresis (min_run, grace, min_pause, smoothing).
"""

from __future__ import annotations

from .budget import Budget
from .views import EPS, LoadView

#: Amps per leg above its minimum that a paused load needs to restart.
RESTART_MARGIN = 1.0


def hold_back_restarts(loads: list[LoadView], budget: Budget) -> list[LoadView]:
    """The loads that may compete; the others keep the hard limit that holds them back as their reason."""
    competing: list[LoadView] = []
    for load in loads:
        mem = load.memory
        restarting = not load.was_running and mem.paused_since is not None
        override = load.must_run or (mem.mode is not None and mem.mode is not load.mode)
        if restarting and not override:
            room, reason, subject = budget.hard_room(load)
            floor = load.floor
            if floor - EPS <= room < floor + RESTART_MARGIN - EPS:
                load.reason, load.subject, load.room = reason, subject, room
                load.amount = load.target = 0.0
                continue
        competing.append(load)
    return competing
