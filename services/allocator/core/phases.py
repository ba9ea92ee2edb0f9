"""Phase switching: whether a 1p/3p load charges on one phase or three, with its own timers.

A 3-phase car needs 3 × its minimum (3 × 6 A, 4.1 kW) before it can charge at all; on one phase it starts
from 1 × 6 A (1.4 kW). A load switches only when its adapter says it can (``LoadState.phase_switching``) and
its settings ask for it (``LoadSettings.phases``: ``auto``, ``1`` or ``3``; None: no switching).

``auto`` wants 3 phases when the pool its mode draws on carries the 3-phase minimum (``pool ≥ 3 × floor``
leg-amps; the load's own draw is already in the pool), else 1 — in Solar Only, Solar Priority and Excess
(Standard, Continuous and must-run: 3, the fastest). The other loads' shares are not taken off: a load of
higher priority that takes the surplus first makes a 3-phase load pause until the delay down switches it.

Timers (``SiteSettings.timers``): a running load switches up only after the pool has carried the 3-phase
minimum for ``phase_switch_delay_up`` and down only after it has been short for ``phase_switch_delay_down``
(a wish that lapses starts over); a fixed ``1``/``3`` switches at once, and so does a load that is not
running when it goes down (it may start sooner) or its mode takes grid power — a paused solar load going up
waits for the delay like a running one, so a surplus hovering at the 3-phase minimum does not flip it. At
most ``max_phase_switches_per_hour`` switches in any hour. A switch pauses the load (setpoint 0, reason
``phase_switch``) for ``phase_switch_pause`` from the switch — break before make: the car stops before the
phases change, and it comes back as a start from 0 on the new phases, an increase like any other (checked
against the fuse per phase, so 1 → 3 phases is an increase on two phases that must fit there). The pause
leaves no minimum pause behind (it is not a stop of the load's mode). Stale data: no switching.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.models.allocation import LoadMemory
from shared.models.base import Phase
from shared.models.settings import PhaseChoice, Timers

from .pools import Pools
from .strategies import EXCESS, SOLAR, SOLAR_PRIORITY
from .views import EPS, LoadView, rewire

_SOLAR_POOLS = frozenset({SOLAR, SOLAR_PRIORITY, EXCESS})
_HOUR = timedelta(hours=1)


def _a(amps: float) -> str:
    return f"{amps:.1f} A"


def wanted_count(view: LoadView, pools: Pools) -> tuple[int, str]:
    """The phase count the load's choice and pool ask for, and why (for the sentence)."""
    choice = view.phase_choice
    if choice is PhaseChoice.ONE:
        return 1, "its setting is 1 phase"
    if choice is PhaseChoice.THREE:
        return 3, "its setting is 3 phases"
    if view.pool not in _SOLAR_POOLS:
        return 3, "its mode may take grid power"
    name = "excess" if view.pool == EXCESS else "solar surplus"
    pool = pools.excess if view.pool == EXCESS else pools.surplus
    need = 3 * view.floor
    if pool + EPS >= need:
        return 3, f"the {name} ({_a(pool)} over the phases) carries its 3 × {_a(view.floor)} minimum"
    return 1, f"the {name} ({_a(pool)} over the phases) is short of its 3 × {_a(view.floor)} minimum"


def _count_words(count: int) -> str:
    return "1 phase" if count == 1 else f"{count} phases"


def decide_phases(
    views: list[LoadView], pools: Pools, timers: Timers, site_order: tuple[Phase, ...], now: datetime
) -> bool:
    """Decide the phases of every switching load; True when one switched now (its view is rewired)."""
    switched = False
    pause = timedelta(seconds=timers.phase_switch_pause)
    for view in views:
        if view.phase_choice is None:
            continue
        mem = view.memory
        recent = tuple(t for t in mem.phase_switches if now - _HOUR < t <= now)
        view.phase_switches = recent
        if recent and now < recent[-1] + pause:
            view.switch_pause = True
            view.switched_from = 0
            continue
        if pools.stale or not view.wants_power:
            continue
        want, why = wanted_count(view, pools)
        if want == view.phase_count:
            continue
        since = mem.phase_wish_since if mem.phase_wish_since is not None and mem.phase_wish_since <= now else now
        view.phase_wish_since = since
        # at once: a fixed choice; a load not running that goes down (it may start sooner) or takes grid power
        immediate = view.phase_choice is not PhaseChoice.AUTO or (
            not view.was_running and (want == 1 or view.pool not in _SOLAR_POOLS))
        delay = 0.0 if immediate else (timers.phase_switch_delay_up if want == 3 else timers.phase_switch_delay_down)
        waited = (now - since).total_seconds()
        if waited + EPS < delay:
            view.phase_note = f"switches to {_count_words(want)} in {delay - waited:.0f} s if it stays so: {why}"
            continue
        if len(recent) >= timers.max_phase_switches_per_hour:
            view.phase_note = (
                f"would switch to {_count_words(want)} ({why}), but it switched {len(recent)} times in the last"
                " hour, its limit"
            )
            continue
        view.switched_from = view.phase_count
        view.phase_count = want
        view.phase_wish_since = None
        view.phase_switches = (*recent, now)
        view.switch_pause = True
        view.phase_note = why
        rewire(view, view.phase_options[0] if want == 1 else view.phase_options[1], site_order)
        switched = True
    return switched


def switch_sentence(view: LoadView) -> str:
    """The sentence of a load paused around a phase switch."""
    if view.switched_from:
        return (
            f"paused to switch from {_count_words(view.switched_from)} to {_count_words(view.phase_count)}:"
            f" {view.phase_note}"
        )
    return f"paused while it switches to {_count_words(view.phase_count)}"


def phase_memory(view: LoadView, memory: LoadMemory) -> LoadMemory:
    """The decision's memory with the load's phase count, pending wish and recent switches."""
    count = 1 if view.phase_count == 1 else 3
    switches = list(view.phase_switches)
    if (
        memory.phase_count == count
        and memory.phase_wish_since == view.phase_wish_since
        and memory.phase_switches == switches
    ):
        return memory
    return memory.model_copy(
        update={"phase_count": count, "phase_wish_since": view.phase_wish_since, "phase_switches": switches}
    )
