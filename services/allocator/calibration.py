"""Phase mapping and polarity detection from load steps: a pure, deterministic detector.

Fed one (site measurement, the site's load states) pair after another, it compares each observation with
the previous one. A **step event** is one load whose draw changes by at least ``step`` amps on some site
phase between two consecutive, fresh observations, while no other load steps. The grid change of each
phase over the same interval is then matched against the load's step: a grid phase *matches* when its
change has the step's size within ``max(tolerance × step, tolerance_abs)``, and is *quiet* when its change
is within that band of zero. An event counts only when exactly as many grid phases match as the load
stepped on and every other phase is quiet; anything else (house noise, two loads at once, a lag between
the meter and the adapter) is ignored.

- **Polarity**: each matching grid phase votes ``normal`` when it stepped the same way as the load (import
  positive) and ``inverted`` when it stepped the other way.
- **Phase mapping**: the load's ``draw`` is per site phase as its adapter mapped it (through ``legs``), so
  the step shows on the *configured* phase(s). Only an asymmetric step (fewer phases than the grid has: a
  1- or 2-phase car on a 3-phase charger) tells legs apart: a stepping leg whose configured phase matched
  votes for that phase; when exactly one stepping leg's configured phase stayed quiet and exactly one other
  grid phase matched, that leg votes for the phase the grid stepped on. A step on every grid phase at once
  (symmetric) cannot tell legs apart: it is counted, and votes for polarity only. A 2-phase step whose two
  legs are swapped between the same two phases cannot be seen either.

A verdict needs ``min_votes`` votes for one answer among the recent ones with no more than
``max_contradicting`` of them for another. Only the last :data:`VOTE_WINDOW` votes count, so after a
fix (``invert: true`` on the meter, corrected ``legs``) the verdict follows the new readings.

Everything the detector remembers is inside the :class:`Calibration` it returns (the last observation and
the recent votes), so the allocator stays stateless: any instance continues from the retained copy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.models import (
    Calibration,
    Leg,
    LoadCalibration,
    LoadState,
    LoadStatus,
    Observation,
    PendingStep,
    Phase,
    PhasePolarity,
    Polarity,
    SiteMeasurement,
)
from shared.models.calibration import VOTE_WINDOW

#: Load states whose draw says nothing reliable.
_SILENT = (LoadStatus.UNAVAILABLE, LoadStatus.FAULTED)


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """How sure the detector must be before it says anything."""

    #: Smallest change of a load's draw on a phase (A) that is a step event.
    step: float = 4.0
    #: A grid change matches a load step within this share of the step, or ``tolerance_abs`` if larger.
    tolerance: float = 0.3
    tolerance_abs: float = 1.5
    #: Votes one answer needs, and the largest share of recent votes that may say otherwise.
    min_votes: int = 3
    max_contradicting: float = 0.25
    #: A measurement older than this (s) at ``now`` is not used; observations further apart are not compared.
    stale_after: float = 10.0
    max_gap: float = 30.0
    #: How far apart (s) the meter and the load's adapter may see the same step: the grid before the step is
    #: read up to ``lag`` before the load's last report of its old draw, and after it at least ``lag`` after
    #: its report of the new draw (0: both over the same interval between two consecutive observations).
    lag: float = 0.0


DEFAULT_SETTINGS = DetectorSettings()


@dataclass(frozen=True, slots=True)
class _Votes:
    """What one step event says: polarity per grid phase, phase per leg of the stepping load."""

    load: str
    polarity: dict[Phase, Polarity]
    legs: dict[Leg, Phase]
    symmetric: bool


def observe(
    calibration: Calibration | None,
    measurement: SiteMeasurement,
    loads: Iterable[LoadState],
    now: datetime,
    settings: DetectorSettings = DEFAULT_SETTINGS,
) -> Calibration:
    """The calibration after one more observation: ``calibration`` (None: nothing known yet) updated with
    ``measurement`` and the site's load states at that moment. Pure: ``now`` is the only time it uses."""
    site = measurement.site
    if calibration is not None and calibration.site != site:
        raise ValueError(f"calibration of site {calibration.site!r} fed a measurement of site {site!r}")
    held = calibration or Calibration(site=site, ts=now)
    states = {s.load: s for s in loads if s.site == site}
    load_cals = {load: cal for load, cal in held.loads.items()}
    reconfigured = False
    for load, state in states.items():
        cal = load_cals.get(load, LoadCalibration())
        if cal.configured != state.legs:
            load_cals[load] = cal.model_copy(update={"configured": dict(state.legs)})
            reconfigured = True
    phases = dict(held.phases)
    events, ignored = held.events, held.ignored

    observation = _observation(measurement, states.values(), now, settings)
    last, history, pending = held.last, list(held.history), held.pending
    gap = (observation.ts - last.ts).total_seconds() if observation is not None and last is not None else None
    if observation is None or last is None or gap is None or gap > settings.max_gap:
        history, pending = [], None  # nothing to compare with, or too long ago: start afresh
    elif gap <= 0:
        observation = last  # the same measurement again (or an older one): nothing new
    else:
        steppers = _steppers(last, observation, states, settings)
        if not steppers and pending is None and not reconfigured:
            # a quiet reading (what nearly every reading is): no step to judge, none waiting for the grid, so
            # no vote and no new verdict (verdicts follow from the votes alone); only the memory of readings
            # moves on, and the findings are kept as they are, the same objects (see :func:`same_findings`)
            return held.model_copy(update={"ts": now, "last": observation,
                                           "history": _window(history, last, observation, settings)})
        outcomes: list[_Votes | str] = []
        if pending is not None and steppers:
            outcomes.append("the load stepped again before the grid settled")
            pending = None
        if steppers:
            events += 1
            if len(steppers) > 1:
                outcomes.append("several loads stepped at once")
            else:
                load, delta = steppers[0]
                anchor = _anchor([*history, last], last, settings)
                pending = PendingStep(load=load, delta=delta, before=dict(anchor.grid),
                                      due=observation.ts + timedelta(seconds=settings.lag))
        if pending is not None and observation.ts >= pending.due:
            outcomes.append(_judge(pending, observation.grid, states, settings))
            pending = None
        for outcome in outcomes:
            if isinstance(outcome, _Votes):
                _tally(outcome, load_cals, phases)
            else:
                ignored += 1
        history = _window(history, last, observation, settings)

    load_cals = {load: _load_verdict(cal, settings) for load, cal in sorted(load_cals.items())}
    phases = {p: _phase_verdict(pp, settings) for p, pp in sorted(phases.items())}
    return Calibration(site=site, ts=now, loads=load_cals, phases=phases, events=events, ignored=ignored,
                       notes=_notes(load_cals, phases), last=observation,
                       history=history if observation is not None else [], pending=pending)


def same_findings(before: Calibration | None, after: Calibration) -> bool:
    """Whether two calibrations find the same: all but their stamp and the readings they remember. Cheap
    after a quiet reading, whose findings are the very objects it was given."""
    return before is not None and all(
        getattr(before, name) is getattr(after, name) or getattr(before, name) == getattr(after, name)
        for name in _FINDINGS)


def detected_legs_changed(before: Calibration | None, after: Calibration) -> bool:
    """Whether a load's detected legs differ between two calibrations (a load with ``auto_phase_map`` is
    then decided anew)."""
    if before is not None and before.loads is after.loads:
        return False
    held = {} if before is None else {load: cal.legs for load, cal in before.loads.items()}
    return held != {load: cal.legs for load, cal in after.loads.items()}


#: What a calibration finds: everything but its stamp and the readings it remembers.
_FINDINGS = tuple(name for name in Calibration.model_fields if name not in {"ts", "last", "history"})


# -- one observation ---------------------------------------------------------------------------------
def _window(history: list[Observation], last: Observation, observation: Observation,
            settings: DetectorSettings) -> list[Observation]:
    """The observations to keep beside ``observation``: those within ``lag`` before it (at most 64)."""
    since = observation.ts - timedelta(seconds=settings.lag)
    return [o for o in [*history, last] if o.ts >= since][-64:]


def _observation(measurement: SiteMeasurement, states: Iterable[LoadState], now: datetime,
                 settings: DetectorSettings) -> Observation | None:
    """The pair as the detector keeps it; None when the measurement is not fresh (then nothing is compared
    across the gap)."""
    readings = measurement.grid_current
    if not readings:
        return None
    if any((now - r.ts).total_seconds() > settings.stale_after for r in readings.values()):
        return None
    draws = {s.load: dict(s.draw) for s in states if s.status not in _SILENT}
    return Observation(ts=measurement.ts, grid={p: r.value for p, r in readings.items()}, draws=draws)


def _changes(before: Observation, after: Observation) -> dict[str, dict[Phase, float]]:
    """Per load in both observations: the change of its draw per site phase."""
    changes = {}
    for load, draw in after.draws.items():
        old = before.draws.get(load)
        if old is not None:
            changes[load] = {p: draw.get(p, 0.0) - old.get(p, 0.0) for p in sorted(set(draw) | set(old))}
    return changes


def _steppers(before: Observation, after: Observation, states: Mapping[str, LoadState],
              settings: DetectorSettings) -> list[tuple[str, dict[Phase, float]]]:
    """The loads whose draw stepped between two observations, with their change per site phase."""
    return [(load, delta) for load, delta in _changes(before, after).items()
            if load in states and any(abs(d) >= settings.step for d in delta.values())]


def _anchor(candidates: list[Observation], last: Observation, settings: DetectorSettings) -> Observation:
    """The grid reading before a step: the earliest observation within ``lag`` before ``last`` (the load's
    last report of its old draw) since which no load stepped; ``last`` itself when ``lag`` is 0."""
    for candidate in candidates:
        if candidate.ts < last.ts - timedelta(seconds=settings.lag):
            continue
        if all(abs(d) < settings.step for delta in _changes(candidate, last).values() for d in delta.values()):
            return candidate
    return last


def _judge(step: PendingStep, grid_after: Mapping[Phase, float], states: Mapping[str, LoadState],
           settings: DetectorSettings) -> _Votes | str:
    """The votes of one step event, or why the grid did not show it cleanly."""
    state = states.get(step.load)
    if state is None:
        return "the load is gone"
    delta = step.delta
    stepped = {p: d for p, d in delta.items() if abs(d) >= settings.step}
    size = sum(stepped.values()) / len(stepped)
    band = max(settings.tolerance * abs(size), settings.tolerance_abs)
    if any(abs(d) > band for p, d in delta.items() if p not in stepped):
        return "the load changed on other phases too"
    if any((d > 0) != (size > 0) for d in stepped.values()):
        return "the load stepped up on one phase and down on another"
    grid = {p: grid_after[p] - step.before[p] for p in sorted(set(step.before) & set(grid_after))}
    matched = {p: g for p, g in grid.items() if abs(abs(g) - abs(size)) <= band}
    quiet = {p for p, g in grid.items() if abs(g) <= band}
    if len(matched) != len(stepped) or len(matched) + len(quiet) != len(grid):
        return "the grid did not show the step"
    polarity = {p: Polarity.NORMAL if (g > 0) == (size > 0) else Polarity.INVERTED for p, g in matched.items()}
    symmetric = len(stepped) == len(grid)
    legs: dict[Leg, Phase] = {}
    stepping = [leg for leg in state.phases_in_use if state.legs[leg] in stepped]
    if not symmetric and len(stepping) == len(stepped):
        kept = {leg: state.legs[leg] for leg in stepping if state.legs[leg] in matched}
        rest = [leg for leg in stepping if leg not in kept]
        free = [p for p in matched if p not in kept.values()]
        legs.update(kept)
        if len(rest) == 1 and len(free) == 1:
            legs[rest[0]] = free[0]
    return _Votes(load=step.load, polarity=polarity, legs=legs, symmetric=symmetric)


def _tally(votes: _Votes, loads: dict[str, LoadCalibration], phases: dict[Phase, PhasePolarity]) -> None:
    for p, vote in votes.polarity.items():
        held = phases.get(p, PhasePolarity())
        phases[p] = held.model_copy(update={"recent": [*held.recent, vote][-VOTE_WINDOW:]})
    cal = loads.get(votes.load, LoadCalibration())
    recent = {leg: list(history) for leg, history in cal.recent.items()}
    for leg, phase in votes.legs.items():
        recent[leg] = [*recent.get(leg, []), phase][-VOTE_WINDOW:]
    loads[votes.load] = cal.model_copy(update={
        "recent": dict(sorted(recent.items())),
        "symmetric_steps": cal.symmetric_steps + (1 if votes.symmetric else 0),
    })


# -- verdicts ----------------------------------------------------------------------------------------
def _winner(counts: Counter[str], settings: DetectorSettings) -> str | None:
    """The answer with enough votes and few enough contradicting ones, if any (ties go to none)."""
    if not counts:
        return None
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    answer, votes = ranked[0]
    total = sum(counts.values())
    if votes < settings.min_votes or (total - votes) > settings.max_contradicting * total:
        return None
    return answer


def _load_verdict(cal: LoadCalibration, settings: DetectorSettings) -> LoadCalibration:
    votes: dict[Leg, dict[Phase, int]] = {}
    legs: dict[Leg, Phase] = {}
    for leg, history in sorted(cal.recent.items()):
        counts = Counter(str(p) for p in history)
        votes[leg] = {Phase(p): n for p, n in sorted(counts.items())}
        answer = _winner(counts, settings)
        if answer is not None:
            legs[leg] = Phase(answer)
    differs = any(cal.configured.get(leg) != phase for leg, phase in legs.items())
    return cal.model_copy(update={"votes": votes, "legs": legs, "differs": differs})


def _phase_verdict(pp: PhasePolarity, settings: DetectorSettings) -> PhasePolarity:
    counts = Counter(str(v) for v in pp.recent)
    answer = _winner(counts, settings)
    return pp.model_copy(update={
        "polarity": Polarity(answer) if answer is not None else Polarity.UNKNOWN,
        "normal": counts[Polarity.NORMAL.value],
        "inverted": counts[Polarity.INVERTED.value],
    })


def _notes(loads: Mapping[str, LoadCalibration], phases: Mapping[Phase, PhasePolarity]) -> list[str]:
    notes = [f"phase {p} reads inverted: its clamp or meter source is the wrong way round"
             for p, pp in phases.items() if pp.polarity is Polarity.INVERTED]
    for load, cal in loads.items():
        for leg, phase in cal.legs.items():
            configured = cal.configured.get(leg)
            if configured != phase:
                notes.append(f"load {load}: {leg} steps the grid on phase {phase}, configured {configured}: "
                             f"set its legs {{{leg}: {phase}}}")
        if cal.symmetric_steps and not cal.recent:
            notes.append(f"load {load}: only symmetric 3-phase steps so far, which cannot tell its legs apart")
    return notes[:32]


def remapped(state: LoadState, detected: Mapping[Leg, Phase]) -> LoadState:
    """``state`` with the detected legs in place of the configured ones, and its draw moved with them.

    The adapter reported the draw per site phase through the configured ``legs``; each leg in use carried
    what its configured phase shows (split evenly when two legs in use share a phase). That per-leg draw is
    now put on the leg's detected phase. Draw on a phase no leg in use is configured on stays where it is.
    A detected leg takes its phase from the configured leg that held it (the two swap), so the legs stay a
    permutation of the phases; detections that contradict each other (two legs on one phase) are not applied
    and the state is returned unchanged.
    """
    legs = dict(state.legs)
    for leg, phase in sorted(detected.items()):
        if leg not in legs or legs[leg] == phase:
            continue
        holder = next((other for other, p in legs.items() if p == phase and other != leg), None)
        if holder is not None:
            legs[holder] = legs[leg]
        legs[leg] = phase
    if legs == state.legs or any(legs.get(leg, phase) != phase for leg, phase in detected.items()):
        return state
    in_use = state.phases_in_use
    sharing = Counter(state.legs[leg] for leg in in_use)
    draw: dict[Phase, float] = {p: a for p, a in state.draw.items() if p not in sharing}
    for leg in in_use:
        share = state.draw.get(state.legs[leg], 0.0) / sharing[state.legs[leg]]
        draw[legs[leg]] = draw.get(legs[leg], 0.0) + share
    return state.model_copy(update={"legs": legs, "draw": dict(sorted(draw.items()))})


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the calibration found that the configuration should change: reported once, never applied
    silently."""

    error: str  # ``polarity_inverted`` or ``phase_map_mismatch``
    load: str | None
    phase: Phase | None
    message: str


def new_findings(before: Calibration | None, after: Calibration,
                 sources: Mapping[Phase, str | None] | None = None) -> list[Finding]:
    """What ``after`` finds that ``before`` did not (so each finding is reported once, by any instance)."""
    found: list[Finding] = []
    for phase, pp in after.phases.items():
        held = before.phases.get(phase) if before is not None else None
        if pp.polarity is Polarity.INVERTED and (held is None or held.polarity is not Polarity.INVERTED):
            source = (sources or {}).get(phase)
            where = f"meter source {source!r}" if source else "the meter source of that phase"
            normal = [str(p) for p, other in after.phases.items() if other.polarity is Polarity.NORMAL
                      and (sources or {}).get(p) == source]
            fix = (f"turn that phase's clamp round (or give its value scale: -1): phases {', '.join(normal)} of "
                   f"{where} read normal, so invert: true on the source would flip them too" if normal
                   else f"set invert: true on {where}")
            found.append(Finding("polarity_inverted", None, phase,
                                 f"grid phase {phase} reads inverted ({pp.inverted} of {pp.inverted + pp.normal} "
                                 f"load steps went the other way): {fix}"))
    for load, cal in after.loads.items():
        held_cal = before.loads.get(load) if before is not None else None
        if not cal.differs or (held_cal is not None and held_cal.differs and held_cal.legs == cal.legs):
            continue
        wrong = {leg: phase for leg, phase in cal.legs.items() if cal.configured.get(leg) != phase}
        told = ", ".join(f"{leg} is on phase {phase} (configured {cal.configured.get(leg)})"
                         for leg, phase in wrong.items())
        legs = ", ".join(f"{leg}: {phase}" for leg, phase in wrong.items())
        found.append(Finding("phase_map_mismatch", load, None,
                             f"load {load}: {told}: set the load's legs {{{legs}}} (or its auto_phase_map: true)"))
    return found


__all__ = ["DEFAULT_SETTINGS", "DetectorSettings", "Finding", "detected_legs_changed", "new_findings", "observe",
           "remapped", "same_findings"]
