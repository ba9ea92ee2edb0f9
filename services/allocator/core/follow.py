"""Claims that age, and break before make: what each load may really be drawing now, and what it may still draw.

A load's reported draw is a *claim*. The house load is ``grid - Σ claim``, so a claim that is too high hands
current the load does not use to the others. A claim counts only

* when the load's state is fresh: its ``ts`` at most ``timers.load_stale_after`` old and at most
  ``timers.future_tolerance`` ahead of ``now`` (else it claims nothing: its real current stays in the house);
* up to what the load may be drawing: per leg its allocation, or the allocation it was lowered from while
  it has not followed yet, plus ``timers.draw_tolerance`` (a load no decision has been made for yet — its
  memory is empty — up to its maximum, and it is reserved at what it draws: a car charging before the
  allocator first starts is not paused for its own current);
* on a phase it reports no draw on, as its allocation: its current is assumed to follow its setpoint, so it
  does not count itself as house load and talk itself down (14, 0, 14, 0 A). Until an increase may have been
  followed (``follow_time``) the part it may not draw yet (``unsure``: allocation - ``raised_from``) is
  reserved for break before make, so no other load's increase counts on it. The price of not measuring: a
  load that reports no draw and draws less than its allocation hands the difference to the others until it
  takes it — then the allocator sees it like a house step and cuts within one decision.

Break before make: a load lowered in a decision may still draw the current it was lowered from until it
follows — EVs take 2-30 s. Until its fresh draw, stamped after the lowering, is at or below its new
allocation + ``draw_tolerance`` on every phase it uses, or ``timers.follow_time`` has passed, it keeps a
``reserved`` current (per leg): the largest of its previous allocation, the one it was lowered from and its
claimed draw (a load counts at its draw whenever that is above its allocation). The safety refit
(:mod:`.safety`) lets no load go above its previous allocation into current a reservation still holds;
decreases are never delayed. :class:`~shared.models.allocation.LoadMemory` carries ``lowered_from``,
``raised_from`` and ``changed_at`` from one decision to the next.

A faulted or unavailable load is not under control: its draw stays in the house load, and on top of it the
current it may take on its own (``LoadState.fallback_current``, an OCPP charger's baseline) is reserved.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.models.allocation import LoadMemory
from shared.models.base import Phase
from shared.models.load import LoadStatus
from shared.models.settings import Timers

from .views import EPS, LoadView

NOT_COUNTED = frozenset({LoadStatus.FAULTED, LoadStatus.UNAVAILABLE})
#: An allocation that moves less than this (A) has not changed (the shared strategy's bisection wobbles).
CHANGE = 0.01
NO_CLAIM: dict[Phase, float] = {}


def judge(views: list[LoadView], timers: Timers, now: datetime) -> None:
    """Set each load's ``fresh``, ``pending`` (a lowering not followed yet), ``reserved``, ``unsure`` and
    ``claim``."""
    oldest = now - timedelta(seconds=timers.load_stale_after)
    newest = now + timedelta(seconds=timers.future_tolerance)
    follow_cutoff = now - timedelta(seconds=timers.follow_time)
    tolerance = timers.draw_tolerance
    for view in views:
        ts = view.ts
        fresh = view.fresh = oldest <= ts <= newest
        if view.status in NOT_COUNTED:
            continue  # claim nothing, reserve its fallback (see fallback_reserve)
        mem = view.memory
        current = mem.current
        changed = mem.changed_at
        within = changed is not None and changed > follow_cutoff
        if within:
            view.settled = False
        top = current
        lowered = mem.lowered_from
        draw = view.draw
        if within and lowered is not None and lowered > current:
            assert changed is not None
            followed = fresh and view.ts > changed
            if followed:
                for p, k in view.weights:
                    d = draw.get(p)
                    if d is None or d > k * (current + tolerance) + EPS:
                        followed = False
                        break
            if not followed:
                view.pending = True
                top = lowered
        view.reserved = top
        if not fresh:
            view.claim = NO_CLAIM
            continue
        undecided = undecided_memory(mem)
        if undecided and view.maximum > top:
            top = view.maximum
        raised = mem.raised_from
        unmeasured = False
        claim: dict[Phase, float] = {}
        for p, k in view.weights:
            d = draw.get(p)
            if d is None:
                claim[p] = k * current
                unmeasured = True
            else:
                cap = k * (top + tolerance)
                claim[p] = d if d < cap else cap
        view.claim = claim
        # Budgeted at max(what it draws, what it was allowed): a draw within the tolerance above its allocation
        # (a load not quite down yet) is not counted on either.
        reserved = view.reserved
        for p, k in view.weights:
            if claim[p] > k * reserved:
                reserved = claim[p] / k
        view.reserved = reserved
        if unmeasured and within and raised is not None and raised < current:
            view.unsure = current - raised


def undecided_memory(mem: LoadMemory) -> bool:
    """No decision has been made for the load yet (or its memory was lost): the empty memory."""
    return (
        mem.mode is None
        and mem.current == 0.0
        and not mem.on
        and mem.paused_since is None
        and mem.changed_at is None
    )


def fallback_reserve(view: LoadView) -> dict[Phase, float]:
    """Per phase, what a faulted or unavailable load may draw on its own beyond the draw it reports (fresh)."""
    fallback = view.fallback
    if fallback <= 0.0 or view.status not in NOT_COUNTED:
        return NO_CLAIM
    out: dict[Phase, float] = {}
    for p, k in view.weights:
        drawn = view.draw.get(p, 0.0) if view.fresh else 0.0
        extra = k * fallback - drawn
        if extra > 0.0:
            out[p] = extra
    return out


def remember(
    view: LoadView, amount: float, now: datetime
) -> tuple[float | None, float | None, datetime | None]:
    """``lowered_from``, ``raised_from`` and ``changed_at`` for the next decision, given this one's amount."""
    mem = view.memory
    previous = mem.current
    moved = amount - previous
    if mem.changed_at is None and -CHANGE <= moved <= CHANGE:
        return None, None, None  # the common case: nothing pending, nothing changed
    lowered = mem.lowered_from if view.pending else None
    raised = mem.raised_from if mem.changed_at is not None and not view.settled else None
    if moved > CHANGE or moved < -CHANGE:
        high = previous if lowered is None or lowered < previous else lowered
        low = previous if raised is None or raised > previous else raised
        return (high if high > amount + EPS else None, low if low < amount - EPS else None, now)
    if lowered is not None and lowered <= amount + EPS:
        lowered = None
    if raised is not None and raised >= amount - EPS:
        raised = None
    if lowered is None and raised is None:
        return None, None, None
    return lowered, raised, mem.changed_at
