"""The battery as a household means it (issue 14): sentences, and decisions that do not depend on the draw."""

from __future__ import annotations

from services.allocator.core import allocate
from shared.models import Mode
from shared.models.allocation import Snapshot

from .kit import NOW, battery, ev, grid, grid1, mem, site


def test_an_soc_just_below_the_target_does_not_read_as_the_target() -> None:
    snap = Snapshot(
        settings=site(battery=battery()),
        measurement=grid(-8, -8, -8, soc=79.9, battery=0.0),
        loads=[ev("ev", mode=Mode.SOLAR_ONLY)],
    )
    allocation = allocate(snap, NOW)
    message = allocation.decision("ev").message
    assert "79.9 %" in message and "80 % target" in message, message
    assert "battery 79.9 %" in allocation.message


def test_the_surplus_above_target_does_not_depend_on_what_the_car_draws() -> None:
    """House 3 A, PV 10 A, a battery that may discharge 20 A: whatever the car draws now (the battery covering
    the rest), the same 27 A are offered."""
    settings = site("A", fuse=40.0, battery=battery(max_discharge=4600.0))
    offers = set()
    for draw in (0.0, 7.0, 12.0, 17.0, 27.0):
        battery_w = (3.0 + draw - 10.0) * 230.0  # the self-consumption battery keeps the grid at 0
        snap = Snapshot(
            settings=settings,
            measurement=grid1(0, soc=90, battery=battery_w),
            loads=[ev("ev", on="A", hi=32, mode=Mode.SOLAR_PRIORITY, draw=draw, memory=mem(max(draw, 6.0), 1000))],
        )
        offers.add(round(allocate(snap, NOW).decision("ev").current, 6))
    assert offers == {27.0}


def test_a_restart_held_back_by_the_margin_says_so() -> None:
    snap = Snapshot(
        settings=site(), measurement=grid(10, 17.5, 10), loads=[ev("ev", memory=mem(0, paused=600))]
    )
    message = allocate(snap, NOW).decision("ev").message
    assert message == "paused: the fuse on phase B leaves 6.5 A; a restart needs its 6.0 A minimum and 1.0 A more"


def test_a_target_at_the_reserve_is_reached_only_above_the_band_and_says_so() -> None:
    snap = Snapshot(
        settings=site(battery=battery(target=10.0)),
        measurement=grid(-8, -8, -8, soc=12.0, battery=0.0),
        loads=[ev("ev", mode=Mode.SOLAR_ONLY)],
    )
    message = allocate(snap, NOW).decision("ev").message
    assert "the battery is at 12 %, not yet 13 % (3 % above its 10 % reserve)" in message, message
