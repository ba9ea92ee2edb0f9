"""Phase switching in the core (services/allocator/core/phases.py), as a table of one-decision stories.

Same conventions as ``test_scenarios.py`` (25 A fuse, 1 A margin, 230 V, no ramp, no smoothing, EVs 6-16 A on
A/B/C). A 3-phase EV needs 18 leg-amps (3 × 6 A) of surplus; on one phase (L1 on A) 6 leg-amps. Each story
checks the hard limits as well (``test_invariants.check``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from services.allocator.core import allocate
from shared.models import LoadMemory, LoadSettings, Mode, Phase, Reason
from shared.models.allocation import LoadInput, Snapshot
from shared.models.settings import PhaseChoice

from .kit import NOW, SITE, ago, ev, grid, site
from .test_invariants import check

SOLAR = Mode.SOLAR_ONLY


def phase_mem(count: int | None = None, current: float = 0.0, wish: float | None = None,
              switches: tuple[float, ...] = (), paused: float | None = None) -> LoadMemory:
    """Memory of a switching load: times in seconds before NOW."""
    return LoadMemory(current=current, on=current > 0, active_since=ago(600) if current else None,
                      paused_since=ago(paused), mode=None, phase_count=count, phase_wish_since=ago(wish),
                      phase_switches=[t for t in (ago(s) for s in sorted(switches, reverse=True)) if t is not None])


def switcher(choice: PhaseChoice | None = PhaseChoice.AUTO, mode: Mode = SOLAR, memory: LoadMemory | None = None,
             switching: bool = True, **kw: Any) -> LoadInput:
    """A 1p/3p EV: L1 on A is its one-phase leg."""
    item = ev("ev", memory=memory, **kw)
    memory = memory or LoadMemory()
    memory = memory.model_copy(update={"mode": mode})
    state = item.state.model_copy(update={"phase_switching": switching})
    settings = LoadSettings(site=SITE, load="ev", ts=NOW, mode=mode, phases=choice)
    return LoadInput(state=state, settings=settings, memory=memory)


def export(watts: float) -> tuple[float, float, float]:
    """Grid currents of a site exporting ``watts`` evenly (no load drawing)."""
    a = -watts / 230.0 / 3
    return (a, a, a)


@dataclass
class Story:
    story: str
    measurement: tuple[float, float, float]
    load: LoadInput
    current: float
    phases: str
    reason: Reason
    count: int | None
    #: Words the sentence must hold.
    says: tuple[str, ...] = ()
    switched: bool = False
    wish: bool = False
    site_kw: dict[str, Any] = field(default_factory=dict)


ST = Story
R = Reason
# fmt: off
STORIES: list[Story] = [
    ST("2 kW on Solar Only, no switching: a 3-phase EV cannot start",
       export(2000), switcher(choice=None), 0.0, "ABC", R.WAITING_FOR_SURPLUS, None),
    ST("2 kW, phases auto, not running: switches to 1 phase at once (paused for the switch)",
       export(2000), switcher(), 0.0, "A", R.PHASE_SWITCH, 1,
       ("from 3 phases to 1 phase", "short of its 3 × 6.0 A minimum"), switched=True),
    ST("2 kW, in the switch pause (10 s ago): still paused",
       export(2000), switcher(memory=phase_mem(1, switches=(10,))), 0.0, "A", R.PHASE_SWITCH, 1,
       ("switches to 1 phase",)),
    ST("2 kW, the pause is over: charges on one phase from the surplus",
       export(2000), switcher(memory=phase_mem(1, switches=(31,))), 2000 / 230, "A", R.SURPLUS_LIMIT, 1),
    ST("the adapter cannot switch: the setting alone changes nothing",
       export(2000), switcher(switching=False), 0.0, "ABC", R.WAITING_FOR_SURPLUS, None),
    ST("1 phase at 16 A, 4.8 kW now: the wish to go up waits for the delay (60 s)",
       (-7 + 16, -7, -7), switcher(memory=phase_mem(1, current=16), draw={"A": 16}), 16.0, "A", R.OK, 1,
       ("switches to 3 phases in 60 s", "carries its 3 × 6.0 A minimum"), wish=True),
    ST("1 phase, paused (not running), 4.8 kW: starts on one phase; going up waits for the delay",
       export(4800), switcher(memory=phase_mem(1, switches=(600,))), 16.0, "A", R.OK,
       1, ("switches to 3 phases in 60 s",), wish=True),
    ST("1 phase at 16 A, 4.8 kW for 61 s: switches up",
       (-7 + 16, -7, -7), switcher(memory=phase_mem(1, current=16, wish=61), draw={"A": 16}),
       0.0, "ABC", R.PHASE_SWITCH, 3, ("from 1 phase to 3 phases",), switched=True),
    ST("3 phases at 7 A, the surplus drops to 3 kW: waits for the delay down (180 s), keeps its minimum (grace)",
       (-4.35 + 7, -4.35 + 7, -4.35 + 7), switcher(memory=phase_mem(3, current=7), draw=7.0),
       6.0, "ABC", R.GRACE, 3, ("switches to 1 phase in 180 s",), wish=True),
    ST("3 phases, 3 kW for 181 s: switches down",
       (-4.35 + 7, -4.35 + 7, -4.35 + 7), switcher(memory=phase_mem(3, current=7, wish=181), draw=7.0),
       0.0, "A", R.PHASE_SWITCH, 1, ("from 3 phases to 1 phase",), switched=True),
    ST("6 switches in the last hour: no seventh",
       (-4.35 + 7, -4.35 + 7, -4.35 + 7),
       switcher(memory=phase_mem(3, current=7, wish=181, switches=(3000, 2500, 2000, 1500, 1000, 500)), draw=7.0),
       6.0, "ABC", R.GRACE, 3, ("switched 6 times in the last hour",), wish=True),
    ST("Standard mode, auto: 3 phases, at once while not running",
       (0, 0, 0), switcher(mode=Mode.STANDARD, memory=phase_mem(1)), 0.0, "ABC", R.PHASE_SWITCH, 3,
       ("its mode may take grid power",), switched=True),
    ST("setting 1 while running on 3: switches at once",
       (7, 7, 7), switcher(choice=PhaseChoice.ONE, mode=Mode.STANDARD, memory=phase_mem(3, current=7), draw=7.0),
       0.0, "A", R.PHASE_SWITCH, 1, ("its setting is 1 phase",), switched=True),
    ST("after a switch up, the fuse per phase holds: B has 4 A left, below its 6 A minimum on 3 phases: paused",
       (0, 20, 0), switcher(mode=Mode.STANDARD, memory=phase_mem(3, switches=(31,))), 0.0, "ABC", R.BELOW_MINIMUM, 3,
       ("the fuse on phase B leaves 4.0 A",)),
    ST("stale data: no switching",
       export(2000), switcher(), 0.0, "ABC", R.STALE_DATA, 3, site_kw={"stale": True}),
]
# fmt: on


@pytest.mark.parametrize("story", STORIES, ids=[s.story for s in STORIES])
def test_phase_switching(story: Story) -> None:
    age = 60.0 if story.site_kw.get("stale") else 0.0
    snapshot = Snapshot(settings=site(), measurement=grid(*story.measurement, age=age), loads=[story.load])
    allocation = allocate(snapshot, NOW)
    check(snapshot, allocation)
    d = allocation.decision("ev")
    assert d.current == pytest.approx(story.current, abs=0.01), d.message
    assert d.reason is story.reason, d.message
    assert d.phases == [Phase(p) for p in story.phases]
    assert d.memory.phase_count == story.count
    for words in story.says:
        assert words in d.message
    assert (NOW in d.memory.phase_switches) is story.switched
    assert (d.memory.phase_wish_since is not None) is story.wish
    if story.reason is R.PHASE_SWITCH:  # the switch pause leaves no minimum pause behind
        assert d.memory.paused_since is None


def test_a_day_of_two_kilowatts_charges_only_with_switching() -> None:
    """Decision after decision at 2 kW: without switching the EV never starts; with it, it charges on one phase
    after the pause, and the memory carries the count (read back through the decision's memory)."""
    for choice, expect in ((None, 0.0), (PhaseChoice.AUTO, 2000 / 230)):
        memory = LoadMemory()
        now = NOW
        for _ in range(6):
            item = switcher(choice=choice, memory=memory)
            snapshot = Snapshot(settings=site(), measurement=grid(*export(2000), age=0.0), loads=[item])
            d = allocate(snapshot.model_copy(update={"measurement": snapshot.measurement.model_copy(
                update={"ts": now, "grid_current": {p: r.model_copy(update={"ts": now})
                                                    for p, r in snapshot.measurement.grid_current.items()}})}),
                         now).decision("ev")
            memory = d.memory
            now += timedelta(seconds=10)
        assert d.current == pytest.approx(expect, abs=0.01), d.message


def test_yaml_phase_number_reads_as_the_choice() -> None:
    settings = LoadSettings.model_validate({"site": SITE, "load": "ev", "ts": NOW.isoformat(), "phases": 1})
    assert settings.phases is PhaseChoice.ONE
