"""What a decision leaves for the next one: load timers, the battery latch and the smoothed surplus."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.allocator.core import allocate
from services.allocator.core.explain import table
from services.allocator.publisher import setpoint
from services.allocator.state import SiteState
from shared.models import Mode, Phase, Reason, Timers
from shared.models.allocation import Allocation, SiteMemory, Snapshot

from .kit import NOW, SITE, battery, ev, grid, grid1, mem, site

TIMERS = Timers(min_run=60.0, min_pause=120.0, grace=300.0, ramp_step=4.0, surplus_smoothing=1.0, surplus_dead_band=0.0)


def _next(snapshot: Snapshot, allocation: Allocation) -> Snapshot:
    """The snapshot the service builds for the next decision: the same inputs with the memory fed back."""
    memories = {d.load: d.memory for d in allocation.decisions}
    return snapshot.model_copy(
        update={
            "loads": [i.model_copy(update={"memory": memories[i.state.load]}) for i in snapshot.loads],
            "memory": allocation.memory,
        }
    )


def test_a_start_sets_active_since_and_a_pause_sets_paused_since() -> None:
    snap = Snapshot(settings=site(timers=TIMERS), measurement=grid(0, 0, 0), loads=[ev("ev")])
    first = allocate(snap, NOW)
    d = first.decision("ev")
    assert d.current == 6.0 and d.memory.active_since == NOW and d.memory.paused_since is None
    assert d.memory.mode is Mode.STANDARD
    # Ten seconds later the house takes everything: the EV pauses, and remembers when.
    later = NOW + timedelta(seconds=10)
    busy = _next(snap, first).model_copy(update={"measurement": grid(24, 24, 24, age=-10)})
    second = allocate(busy, later)
    d2 = second.decision("ev")
    assert d2.current == 0.0 and d2.memory.paused_since == later and d2.memory.active_since is None


def test_ramp_climbs_step_by_step_to_the_maximum() -> None:
    snap = Snapshot(settings=site(timers=TIMERS), measurement=grid(0, 0, 0), loads=[ev("ev")])
    seen = []
    for step in range(5):
        now = NOW + timedelta(seconds=step)
        allocation = allocate(snap, now)
        seen.append(allocation.decision("ev").current)
        snap = _next(snap, allocation).model_copy(update={"measurement": grid(0, 0, 0, age=-step - 1)})
    assert seen == [6.0, 10.0, 14.0, 16.0, 16.0]


def test_grace_remembers_when_the_surplus_fell_short_then_pauses() -> None:
    snap = Snapshot(
        settings=site(timers=TIMERS),
        measurement=grid(2, 2, 2),
        loads=[ev("ev", mode=Mode.SOLAR_ONLY, memory=mem(8, active=1000))],
    )
    first = allocate(snap, NOW)
    d = first.decision("ev")
    assert (d.current, d.reason, d.memory.short_since) == (6.0, Reason.GRACE, NOW)
    # Still short 301 s later: grace is over, the EV pauses.
    later = NOW + timedelta(seconds=301)
    second = allocate(_next(snap, first).model_copy(update={"measurement": grid(2, 2, 2, age=-301)}), later)
    d2 = second.decision("ev")
    assert (d2.current, d2.reason) == (0.0, Reason.WAITING_FOR_SURPLUS)
    assert d2.memory.paused_since == later and d2.memory.short_since is None


def test_battery_full_latch_sets_at_full_soc_and_holds_within_the_hysteresis() -> None:
    # full_soc defaults to 97 %: a battery that stops charging there is full (issue 14, finding 3).
    settings = site(battery=battery())
    full = Snapshot(
        settings=settings, measurement=grid(-8, -8, -8, soc=97, battery=0.0), loads=[ev("ev", mode=Mode.EXCESS)]
    )
    first = allocate(full, NOW)
    assert first.memory.battery_full_latched is True
    assert first.decision("ev").current == pytest.approx(8.0)
    # Dipped to 94.5 %, still charging 1.2 kW while the EV takes the export: still full (latched).
    charging = grid(-1, -1, -1, soc=94.5, battery=-1200.0)
    dipped = _next(full, first).model_copy(update={"measurement": charging})
    second = allocate(dipped, NOW)
    assert second.memory.battery_full_latched is True
    low = _next(dipped, second).model_copy(update={"measurement": grid(-1, -1, -1, soc=93.9, battery=-1200.0)})
    third = allocate(low, NOW)
    assert third.memory.battery_full_latched is False


def test_the_smoothed_surplus_follows_decreases_at_once_and_increases_smoothly() -> None:
    settings = site(timers=Timers(ramp_step=1000.0, surplus_smoothing=0.5, surplus_dead_band=0.0))
    snap = Snapshot(settings=settings, measurement=grid(-2, -2, -2), loads=[ev("ev", mode=Mode.SOLAR_ONLY)])
    first = allocate(snap, NOW)
    assert first.memory.surplus_ema == {Phase.A: 2.0, Phase.B: 2.0, Phase.C: 2.0}
    second = allocate(_next(snap, first).model_copy(update={"measurement": grid(-10, -10, -10)}), NOW)
    assert second.memory.surplus_ema == {Phase.A: 6.0, Phase.B: 6.0, Phase.C: 6.0}
    assert second.decision("ev").current == pytest.approx(6.0)
    third = allocate(_next(snap, second).model_copy(update={"measurement": grid(-1, -1, -1)}), NOW)
    assert third.memory.surplus_ema == {Phase.A: 1.0, Phase.B: 1.0, Phase.C: 1.0}


def test_stale_data_keeps_the_smoothed_surplus_and_holds_nothing() -> None:
    memory = SiteMemory(surplus_ema={Phase.A: 5.0, Phase.B: 5.0, Phase.C: 5.0})
    snap = Snapshot(
        settings=site(timers=TIMERS),
        measurement=grid(0, 0, 0, age=60),
        loads=[ev("ev", mode=Mode.SOLAR_ONLY, memory=mem(8, active=10))],
        memory=memory,
    )
    allocation = allocate(snap, NOW)
    assert allocation.stale
    assert allocation.memory.surplus_ema == memory.surplus_ema
    assert allocation.decision("ev").current == 0.0
    assert "60 s old" in allocation.decision("ev").message


def test_pools_house_and_headroom_are_reported_per_phase() -> None:
    car = ev("ev", on="B", draw={"B": 4}, memory=mem(4, active=500))
    snap = Snapshot(settings=site(), measurement=grid(12, 6, -3), loads=[car])
    allocation = allocate(snap, NOW)
    assert allocation.house == {Phase.A: 12.0, Phase.B: 2.0, Phase.C: -3.0}
    assert allocation.pools["physical"] == {Phase.A: 12.0, Phase.B: 22.0, Phase.C: 27.0}
    assert allocation.decision("ev").current == 16.0
    assert allocation.headroom == {Phase.A: 12.0, Phase.B: 6.0, Phase.C: 27.0}
    text = table(allocation)
    assert "ev" in text and "headroom" in text


def test_decisions_keep_the_input_order_and_every_sentence_is_readable() -> None:
    loads = [ev("z", prio=1), ev("a", prio=9), ev("m", mode=Mode.OFF)]
    allocation = allocate(Snapshot(settings=site(), measurement=grid(0, 0, 0), loads=loads), NOW)
    assert [d.load for d in allocation.decisions] == ["z", "a", "m"]
    assert allocation.decision("m").message == "mode is off"
    assert all(len(d.message) > 5 for d in allocation.decisions)


def test_a_naive_now_is_rejected() -> None:
    snap = Snapshot(settings=site(), measurement=grid(0, 0, 0), loads=[ev("ev")])
    with pytest.raises(ValueError, match="timezone"):
        allocate(snap, NOW.replace(tzinfo=None))


def test_a_reading_from_the_future_is_stale_and_says_so() -> None:
    snap = Snapshot(settings=site(), measurement=grid(0, 0, 0, age=-3600), loads=[ev("ev", memory=mem(16, active=9))])
    allocation = allocate(snap, NOW)
    assert allocation.stale and allocation.decision("ev").current == 0.0
    assert "grid current on phase A is stamped 3600 s in the future" in allocation.decision("ev").message


def test_a_lowering_is_remembered_until_it_is_measured_followed() -> None:
    """Break before make across decisions: the memory carries the 16 A the car was lowered from."""
    loads = [ev("a", on="A", prio=1, draw=16, memory=mem(16, active=500)), ev("b", on="A", prio=2)]
    snap = Snapshot(settings=site(phases="A"), measurement=grid1(24), loads=loads)
    first = allocate(snap, NOW)
    a, b = first.decision("a"), first.decision("b")
    assert (a.current, b.current, b.reason) == (10.0, 0.0, Reason.AWAITING_FOLLOW)
    assert (a.memory.lowered_from, a.memory.changed_at) == (16.0, NOW)
    assert "break before make" in b.message and "phase A" in b.message
    # 3 s later the car still draws 16 A: the memory stays, b still waits.
    later = NOW + timedelta(seconds=3)
    second = allocate(_next(snap, first).model_copy(update={"measurement": grid1(24, age=-3)}), later)
    assert second.decision("a").memory.lowered_from == 16.0 and second.decision("a").memory.changed_at == NOW
    assert second.decision("b").current == 0.0
    # 6 s later the car is measured at 10 A (a state stamped after the lowering): b starts, the memory clears.
    followed = _next(snap, second)
    state = followed.loads[0].state.model_copy(update={"ts": NOW + timedelta(seconds=6), "draw": {Phase.A: 10.0}})
    followed.loads[0] = followed.loads[0].model_copy(update={"state": state})
    third = allocate(followed.model_copy(update={"measurement": grid1(18, age=-6)}), NOW + timedelta(seconds=6))
    assert third.decision("b").current == 6.0
    assert third.decision("a").memory.lowered_from is None and third.decision("a").memory.changed_at is None


def test_the_follow_memory_round_trips_through_the_retained_setpoint() -> None:
    """The service reads memory back from the setpoint it published: the break-before-make fields too."""
    loads = [ev("a", on="A", prio=1, draw=16, memory=mem(16, active=500)), ev("b", on="A", prio=2)]
    allocation = allocate(Snapshot(settings=site(phases="A"), measurement=grid1(24), loads=loads), NOW)
    decision = allocation.decision("a")
    state = SiteState(site=SITE, settings=site(phases="A"))
    assert state.take_setpoint(setpoint(SITE, decision, site(phases="A"), NOW))
    assert state.loads["a"].memory == decision.memory
    assert decision.memory.lowered_from == 16.0
