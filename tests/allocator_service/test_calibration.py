"""Phase mapping and polarity detection: the pure detector on scripted step sequences, then the allocator
against the real Mosquitto publishing what it found."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from services.allocator.calibration import (
    DEFAULT_SETTINGS,
    DetectorSettings,
    detected_legs_changed,
    new_findings,
    observe,
    remapped,
    same_findings,
)
from services.allocator.service import running
from services.allocator.state import SiteState
from shared.config import AmpmqConfig
from shared.models import (
    Calibration,
    ErrorReport,
    Leg,
    LoadKind,
    LoadSettings,
    LoadState,
    Phase,
    Polarity,
    SiteMeasurement,
    SiteSettings,
)
from shared.models.measurement import CurrentReading
from shared.probe import Probe
from shared.topics import Topics

from .conftest import FAST_TIMERS

SITE = "home"
T0 = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)
HOUSE = {Phase.A: 5.0, Phase.B: 3.0, Phase.C: 4.0}


def car(draw: float, *, legs: dict[Leg, Phase] | None = None, in_use: Sequence[Leg] = (Leg.L1,),
        load: str = "car") -> LoadState:
    """A charger connector whose adapter reports ``draw`` A on each configured phase of the legs in use."""
    state = LoadState(site=SITE, load=load, kind=LoadKind.EVSE, min_current=6.0, max_current=16.0,
                      legs=legs or {Leg.L1: Phase.A, Leg.L2: Phase.B, Leg.L3: Phase.C}, phases_in_use=list(in_use))
    return state.model_copy(update={"draw": {p: draw for p in state.site_phases()}})


@dataclass
class Site:
    """A scripted site: the house, the physical wiring of each load, and CTs that may read inverted."""

    physical: dict[str, dict[Leg, Phase]]
    inverted: set[Phase] = field(default_factory=set)
    calibration: Calibration | None = None
    t: datetime = T0
    settings: DetectorSettings = DEFAULT_SETTINGS

    def step(self, states: Sequence[LoadState], noise: dict[Phase, float] | None = None,
             drawing: Sequence[LoadState] | None = None) -> Calibration:
        """One observation, 2 s after the last: the adapters report ``states``; the grid shows the house, the
        noise and what each load really draws (``drawing``, when the meter and the adapter disagree)."""
        self.t += timedelta(seconds=2)
        grid = {p: HOUSE[p] + (noise or {}).get(p, 0.0) for p in Phase}
        for state in drawing if drawing is not None else states:
            for leg in state.phases_in_use:
                grid[self.physical[state.load][leg]] += state.draw.get(state.legs[leg], 0.0)
        readings = {p: CurrentReading(ts=self.t, value=-v if p in self.inverted else v) for p, v in grid.items()}
        measurement = SiteMeasurement(site=SITE, ts=self.t, grid_current=readings)
        self.calibration = observe(self.calibration, measurement, states, self.t, self.settings)
        return self.calibration

    def cycles(self, n: int, on: Callable[[float], LoadState], amps: float = 16.0) -> Calibration:
        """``n`` start/stop pairs of one load (2 n step events)."""
        result = self.step([on(0.0)])
        for _ in range(n):
            self.step([on(amps)])
            result = self.step([on(0.0)])
        return result


def one_phase(amps: float) -> LoadState:
    return car(amps)


def three_phase(amps: float) -> LoadState:
    return car(amps, in_use=(Leg.L1, Leg.L2, Leg.L3))


WIRED_RIGHT = {Leg.L1: Phase.A, Leg.L2: Phase.B, Leg.L3: Phase.C}
L1_ON_C = {Leg.L1: Phase.C, Leg.L2: Phase.A, Leg.L3: Phase.B}


def test_a_correct_mapping_is_confirmed_and_does_not_differ() -> None:
    cal = Site({"car": WIRED_RIGHT}).cycles(2, one_phase)
    result = cal.loads["car"]
    assert result.legs == {Leg.L1: Phase.A} and result.votes == {Leg.L1: {Phase.A: 4}}
    assert not result.differs and cal.notes == []
    assert cal.phases[Phase.A].polarity is Polarity.NORMAL
    assert Phase.B not in cal.phases and Phase.C not in cal.phases  # never stepped: no vote either way


def test_before_enough_votes_nothing_is_detected() -> None:
    site = Site({"car": L1_ON_C})
    site.step([one_phase(0.0)])
    site.step([one_phase(16.0)])
    cal = site.step([one_phase(0.0)])
    assert cal.loads["car"].votes == {Leg.L1: {Phase.C: 2}}
    assert cal.loads["car"].legs == {} and not cal.loads["car"].differs
    assert cal.phases[Phase.C].polarity is Polarity.UNKNOWN


def test_a_one_phase_car_configured_on_a_but_stepping_c_is_detected_on_c_after_three_votes() -> None:
    site = Site({"car": L1_ON_C})
    site.step([one_phase(0.0)])
    site.step([one_phase(16.0)])
    site.step([one_phase(0.0)])
    cal = site.step([one_phase(10.0)])
    result = cal.loads["car"]
    assert result.legs == {Leg.L1: Phase.C} and result.configured[Leg.L1] is Phase.A and result.differs
    assert any("L1" in note and "phase C" in note for note in cal.notes)


def test_house_noise_that_does_not_match_the_step_is_ignored() -> None:
    site = Site({"car": WIRED_RIGHT})
    site.step([one_phase(0.0)])
    # the car steps 16 A while a kettle switches on phase B: the grid shows two steps, the car's cannot be told
    cal = site.step([one_phase(16.0)], noise={Phase.B: 9.0})
    assert (cal.events, cal.ignored) == (1, 1)
    # the car steps 16 A but a heater going off on phase A hides half of it: no match
    site.step([one_phase(0.0)], noise={Phase.B: 9.0})
    cal = site.step([one_phase(16.0)], noise={Phase.A: -8.0, Phase.B: 9.0})
    assert (cal.events, cal.ignored) == (3, 2)
    assert cal.loads["car"].votes == {Leg.L1: {Phase.A: 1}}
    # house noise with no load step is not an event at all
    cal = site.step([one_phase(16.0)], noise={Phase.A: -8.0, Phase.C: 12.0})
    assert (cal.events, cal.ignored) == (3, 2)


def test_a_single_contradicting_event_does_not_flip_the_mapping() -> None:
    site = Site({"car": L1_ON_C})
    cal = site.cycles(2, one_phase)  # 4 votes for C
    assert cal.loads["car"].legs == {Leg.L1: Phase.C}
    # one step where a house load on C hides the car and one on A pretends to be it
    cal = site.step([one_phase(16.0)], noise={Phase.A: 16.0, Phase.C: -16.0})
    assert cal.loads["car"].votes == {Leg.L1: {Phase.A: 1, Phase.C: 4}}
    assert cal.loads["car"].legs == {Leg.L1: Phase.C} and cal.loads["car"].differs


def test_symmetric_three_phase_steps_give_polarity_but_no_mapping() -> None:
    cal = Site({"car": L1_ON_C}).cycles(2, three_phase)
    result = cal.loads["car"]
    assert result.legs == {} and result.votes == {} and not result.differs
    assert result.symmetric_steps == 4
    assert {p: pp.polarity for p, pp in cal.phases.items()} == dict.fromkeys(Phase, Polarity.NORMAL)
    assert any("cannot tell its legs apart" in note for note in cal.notes)


def test_an_inverted_ct_on_phase_b_is_detected_after_three_votes() -> None:
    site = Site({"car": WIRED_RIGHT}, inverted={Phase.B})
    site.step([three_phase(0.0)])
    site.step([three_phase(16.0)])
    cal = site.step([three_phase(0.0)])
    assert cal.phases[Phase.B].polarity is Polarity.UNKNOWN and cal.phases[Phase.B].inverted == 2
    cal = site.step([three_phase(12.0)])
    assert cal.phases[Phase.B].polarity is Polarity.INVERTED and cal.phases[Phase.B].inverted == 3
    assert cal.phases[Phase.A].polarity is Polarity.NORMAL and cal.phases[Phase.C].polarity is Polarity.NORMAL
    assert any("phase B reads inverted" in note for note in cal.notes)


def test_a_two_phase_car_with_one_leg_elsewhere_names_that_leg() -> None:
    two_legs = {"car": {Leg.L1: Phase.A, Leg.L2: Phase.C, Leg.L3: Phase.B}}

    def two_phase(amps: float) -> LoadState:
        return car(amps, in_use=(Leg.L1, Leg.L2))

    result = Site(two_legs).cycles(2, two_phase).loads["car"]
    assert result.legs == {Leg.L1: Phase.A, Leg.L2: Phase.C} and result.differs


def test_stale_measurements_and_two_loads_stepping_at_once_give_no_votes() -> None:
    site = Site({"car": L1_ON_C, "van": WIRED_RIGHT})
    site.step([one_phase(0.0), car(0.0, load="van")])
    cal = site.step([one_phase(16.0), car(16.0, load="van")])
    assert (cal.events, cal.ignored) == (1, 1) and cal.loads["car"].votes == {}
    stale = SiteMeasurement(site=SITE, ts=site.t, grid_current={p: CurrentReading(ts=site.t, value=30.0)
                                                                 for p in Phase})
    cal = observe(cal, stale, [one_phase(0.0)], site.t + timedelta(seconds=60))
    assert cal.last is None and cal.events == 1


def _lagging_cycles(site: Site, meter_first: bool) -> Calibration:
    """Three start/stop cycles where the meter sees each step one reading before the adapter reports it
    (``meter_first``) or one after; six readings between steps."""
    old = one_phase(0.0)
    cal = site.step([old])
    for amps in (16.0, 0.0) * 3:
        new = one_phase(amps)
        if meter_first:
            site.step([old], drawing=[new])
        else:
            site.step([new], drawing=[old])
        for _ in range(5):
            cal = site.step([new])
        old = new
    return cal


@pytest.mark.parametrize("meter_first", [True, False])
def test_with_a_lag_steps_the_meter_and_the_adapter_see_a_reading_apart_still_vote(meter_first: bool) -> None:
    same_interval = _lagging_cycles(Site({"car": L1_ON_C}), meter_first)
    assert same_interval.loads["car"].votes == {} and same_interval.ignored == same_interval.events == 6
    lagging = _lagging_cycles(Site({"car": L1_ON_C}, settings=DetectorSettings(lag=5.0)), meter_first)
    assert lagging.loads["car"].votes == {Leg.L1: {Phase.C: 6}} and lagging.ignored == 0
    assert lagging.loads["car"].legs == {Leg.L1: Phase.C} and lagging.pending is None


def test_with_a_lag_a_second_step_before_the_grid_settled_voids_the_first() -> None:
    site = Site({"car": WIRED_RIGHT}, settings=DetectorSettings(lag=5.0))
    site.step([one_phase(0.0)])
    cal = site.step([one_phase(16.0)])
    assert cal.pending is not None and cal.pending.load == "car"
    cal = site.step([one_phase(0.0)])
    assert (cal.events, cal.ignored) == (2, 1) and cal.pending is not None
    for _ in range(3):
        cal = site.step([one_phase(0.0)])
    assert (cal.events, cal.ignored, cal.pending) == (2, 1, None)
    assert cal.loads["car"].votes == {Leg.L1: {Phase.A: 1}}  # the step back, judged from the car's 16 A reading


def test_serialised_and_restored_the_detector_continues_its_votes() -> None:
    site = Site({"car": L1_ON_C})
    site.step([one_phase(0.0)])
    site.step([one_phase(16.0)])
    cal = site.step([one_phase(0.0)])
    assert cal.loads["car"].legs == {}
    # another instance reads the retained copy back and goes on: the third vote decides
    site.calibration = Calibration.model_validate_json(cal.model_dump_json())
    cal = site.step([one_phase(16.0)])
    assert cal.loads["car"].legs == {Leg.L1: Phase.C} and cal.loads["car"].votes == {Leg.L1: {Phase.C: 3}}


def test_a_quiet_reading_keeps_the_findings_and_only_moves_the_memory_on() -> None:
    site = Site({"car": L1_ON_C}, inverted={Phase.C})
    before = site.cycles(2, one_phase)
    assert before.loads["car"].legs == {Leg.L1: Phase.C}
    after = site.step([one_phase(0.0)], noise={Phase.A: 0.4})  # the house wanders; no load steps
    assert same_findings(before, after) and not detected_legs_changed(before, after)
    assert after.model_dump(exclude={"ts", "last"}) == before.model_dump(exclude={"ts", "last"})
    assert after.ts == site.t and after.last is not None and after.last.ts == site.t
    assert after.last.grid[Phase.A] == pytest.approx(HOUSE[Phase.A] + 0.4)
    # a step after the quiet reading is measured from it, and votes again
    voted = site.step([one_phase(16.0)])
    assert not same_findings(after, voted) and voted.loads["car"].votes == {Leg.L1: {Phase.C: 5}}


def test_a_restored_copy_and_a_quiet_reading_find_the_same_as_the_copy() -> None:
    site = Site({"car": L1_ON_C})
    cal = site.cycles(2, one_phase)
    site.calibration = restored = Calibration.model_validate_json(cal.model_dump_json())
    after = site.step([one_phase(0.0)])
    assert same_findings(restored, after) and same_findings(cal, after)
    assert not detected_legs_changed(cal, after) and detected_legs_changed(None, after)


def test_new_legs_on_a_quiet_reading_are_taken_and_judged_against_the_votes() -> None:
    site = Site({"car": L1_ON_C})
    before = site.cycles(2, one_phase)
    assert before.loads["car"].differs
    # the user set the legs the detector found: the next reading, a quiet one, takes them
    fixed = car(0.0, legs=L1_ON_C)
    site.physical["car"] = L1_ON_C
    after = site.step([fixed])
    assert after.loads["car"].configured == L1_ON_C and not after.loads["car"].differs
    assert not same_findings(before, after)


def test_a_fixed_setting_wins_again_as_new_votes_come_in() -> None:
    site = Site({"car": WIRED_RIGHT}, inverted={Phase.A})
    cal = site.cycles(2, one_phase)
    assert cal.phases[Phase.A].polarity is Polarity.INVERTED
    site.inverted = set()  # the user set invert: true on the meter source
    cal = site.cycles(4, one_phase)
    assert (cal.phases[Phase.A].inverted, cal.phases[Phase.A].normal) == (4, 8)
    assert cal.phases[Phase.A].polarity is Polarity.UNKNOWN  # a third of the recent votes say otherwise
    cal = site.cycles(1, one_phase)
    assert (cal.phases[Phase.A].inverted, cal.phases[Phase.A].normal) == (2, 10)  # the oldest fell out
    assert cal.phases[Phase.A].polarity is Polarity.NORMAL


@pytest.mark.parametrize(
    ("legs", "in_use", "draw", "detected", "expected_legs", "expected_draw"),
    [
        # a 1-phase car reported on A that really is on C: its draw moves to C, L3 takes the free phase A
        (WIRED_RIGHT, [Leg.L1], {Phase.A: 16.0}, {Leg.L1: Phase.C}, L1_ON_C | {Leg.L2: Phase.B, Leg.L3: Phase.A},
         {Phase.C: 16.0}),
        # a 3-phase load with L1 and L3 swapped: the legs swap and the draw follows each leg
        (WIRED_RIGHT, [Leg.L1, Leg.L2, Leg.L3], {Phase.A: 10.0, Phase.B: 10.0, Phase.C: 12.0},
         {Leg.L1: Phase.C, Leg.L3: Phase.A}, {Leg.L1: Phase.C, Leg.L2: Phase.B, Leg.L3: Phase.A},
         {Phase.A: 12.0, Phase.B: 10.0, Phase.C: 10.0}),
        # detections that put two legs on one phase are not applied
        (WIRED_RIGHT, [Leg.L1, Leg.L2], {Phase.A: 8.0, Phase.B: 9.0}, {Leg.L1: Phase.B, Leg.L2: Phase.B},
         WIRED_RIGHT, {Phase.A: 8.0, Phase.B: 9.0}),
        # a 2-phase car with L1 found on B: L2 (configured B) swaps to A, each leg's draw goes with it
        (WIRED_RIGHT, [Leg.L1, Leg.L2], {Phase.A: 8.0, Phase.B: 9.0}, {Leg.L1: Phase.B},
         {Leg.L1: Phase.B, Leg.L2: Phase.A, Leg.L3: Phase.C}, {Phase.A: 9.0, Phase.B: 8.0}),
    ],
)
def test_remapped_moves_the_legs_and_the_draw_with_them(
    legs: dict[Leg, Phase], in_use: list[Leg], draw: dict[Phase, float], detected: dict[Leg, Phase],
    expected_legs: dict[Leg, Phase] | None, expected_draw: dict[Phase, float],
) -> None:
    state = car(0.0, legs=legs, in_use=in_use).model_copy(update={"draw": draw})
    result = remapped(state, detected)
    assert result.legs == (expected_legs or {**legs, **detected})
    assert result.draw == expected_draw


def test_each_finding_is_reported_once_with_what_to_set() -> None:
    site = Site({"car": L1_ON_C}, inverted={Phase.C})
    site.step([one_phase(0.0)])
    site.step([one_phase(16.0)])
    before = site.step([one_phase(0.0)])
    after = site.step([one_phase(16.0)])
    findings = new_findings(before, after, {Phase.C: "p1"})
    assert sorted((f.error, f.load, f.phase) for f in findings) == [
        ("phase_map_mismatch", "car", None), ("polarity_inverted", None, Phase.C)]
    mismatch = next(f for f in findings if f.error == "phase_map_mismatch")
    assert "L1 is on phase C (configured A)" in mismatch.message and "legs {L1: C}" in mismatch.message
    assert "invert: true on meter source 'p1'" in next(f for f in findings if f.phase is Phase.C).message
    assert new_findings(after, site.step([one_phase(0.0)])) == []  # the same findings again: nothing new


def test_a_load_with_auto_phase_map_is_decided_on_the_detected_legs_and_others_are_not() -> None:
    site = Site({"car": L1_ON_C})
    calibration = site.cycles(2, one_phase)
    state = SiteState(SITE, SiteSettings(site=SITE), calibration=calibration)
    state.load("car").state = one_phase(16.0)
    state.load("car").settings = LoadSettings(site=SITE, load="car")
    seen = state.snapshot(site.t).loads[0].state
    assert (seen.legs[Leg.L1], seen.draw) == (Phase.A, {Phase.A: 16.0})  # warned, not overridden
    state.load("car").settings = LoadSettings(site=SITE, load="car", auto_phase_map=True)
    seen = state.snapshot(site.t).loads[0].state
    assert (seen.legs[Leg.L1], seen.draw) == (Phase.C, {Phase.C: 16.0})


# -- the allocator against the real Mosquitto ------------------------------------------------------------
async def _step(watch: Probe, topics: Topics, site: str, draw: float) -> None:
    """The car draws ``draw`` A on each phase; the meter sees the house plus the car, phase B's CT reversed."""
    at = datetime.now(UTC)
    state = three_phase(draw).model_copy(update={"site": site, "ts": at})
    await watch.publish(topics.load_state(site, "car"), state, retain=True)
    await asyncio.sleep(0.05)  # the adapter's state lands before the meter's next reading
    readings = {p: CurrentReading(ts=at, source="grid", value=-(HOUSE[p] + draw) if p is Phase.B else HOUSE[p] + draw)
                for p in Phase}
    await watch.publish(topics.measurement(site), SiteMeasurement(site=site, ts=at, grid_current=readings),
                        retain=True)
    await asyncio.sleep(0.1)


def _errors(watch: Probe, topics: Topics, site: str, after: int, error: str) -> list[ErrorReport]:
    reports = [m.model(ErrorReport) for m in watch.messages[after:] if m.topic == topics.errors(site)]
    return [r for r in reports if r.error == error]


async def test_the_allocator_publishes_the_calibration_and_reports_an_inverted_phase_once(
    watch: Probe, topics: Topics, site_id: str, mqtt_url: str
) -> None:
    config = AmpmqConfig(mqtt_url=mqtt_url, root=topics.root, allocator={
        "settle": 0.3, "sites": {site_id: {"timers": FAST_TIMERS}}, "calibration_interval": 0.0,
        "calibration_lag": 0.0})
    start = watch.mark()
    async with running(config):
        await _step(watch, topics, site_id, 0.0)
        await watch.expect(topics.decision(site_id), after=start)  # the retained state has settled
        for draw in (0.0, 16.0, 0.0, 16.0):
            await _step(watch, topics, site_id, draw)
        report = (await watch.expect(topics.errors(site_id), after=start,
                                     where=lambda m: m.json()["error"] == "polarity_inverted")).model(ErrorReport)
        assert "phase B" in report.message and "'grid'" in report.message
        # A and C of the same source read right: the advice is the clamp, not invert: true on the whole source
        assert "clamp" in report.message and "phases A, C" in report.message
        calibration = (await watch.expect(
            topics.calibration(site_id), after=start,
            where=lambda m: "B" in m.json()["phases"] and m.json()["phases"]["B"]["polarity"] == "inverted",
        )).model(Calibration)
        assert calibration.phases[Phase.A].polarity is Polarity.NORMAL
        assert calibration.loads["car"].symmetric_steps == 3 and not calibration.loads["car"].differs
    # another instance takes over from the retained calibration: it goes on counting and does not report again
    mark = watch.mark()
    async with running(config):
        await watch.expect(topics.decision(site_id), after=mark)
        await _step(watch, topics, site_id, 0.0)
        calibration = (await watch.expect(topics.calibration(site_id), after=mark,
                                          where=lambda m: m.model(Calibration).events == 4)).model(Calibration)
        assert calibration.phases[Phase.B].inverted == 4 and calibration.phases[Phase.B].polarity is Polarity.INVERTED
        assert _errors(watch, topics, site_id, mark, "polarity_inverted") == []
    assert len(_errors(watch, topics, site_id, start, "polarity_inverted")) == 1
