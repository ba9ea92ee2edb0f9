"""The allocator's working view of one load: its validated input flattened into plain numbers.

Built once per decision from :class:`~shared.models.allocation.LoadInput`; the strategies, the stability
rules and the safety refit work on these views (plain slotted objects, no pydantic in the hot path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from shared.models.allocation import LoadInput, LoadMemory
from shared.models.base import Leg, Phase
from shared.models.load import LoadKind, LoadState, LoadStatus
from shared.models.setpoint import Reason
from shared.models.settings import Mode, PhaseChoice, SiteSettings

from .ordering import MUST_RUN_URGENCY, URGENCY

#: Float tolerance for "fits" comparisons (amps).
EPS = 1e-9


@dataclass(slots=True)
class LoadView:
    """One load as the decision sees it. ``amount`` is the per-leg current allocated so far."""

    index: int
    id: str
    kind: LoadKind
    #: Site phases the load draws on now, in leg order (a phase twice if two legs share it).
    phases: tuple[Phase, ...]
    #: Site phase -> number of the load's legs on it (as pairs and as a dict).
    weights: tuple[tuple[Phase, int], ...]
    weight_map: dict[Phase, int]
    #: The site phases as people read them ("A/B/C").
    label: str
    #: For the imbalance limit: site phase pairs (p, q) where the load adds more to p than to q, and by how much.
    pairs: tuple[tuple[Phase, Phase, int], ...]
    #: Number of legs in use (the load's per-leg current times this is its share of a power pool).
    legs: int
    minimum: float
    maximum: float
    #: The most the load may take in this decision (its maximum, or less while it ramps up).
    cap: float
    #: Allowed per-leg currents (stepped loads: the steps; on/off loads: the one "on" current). Empty: continuous.
    steps: tuple[float, ...]
    mode: Mode
    urgency: int
    priority: int
    status: LoadStatus
    must_run: bool
    enabled: bool
    #: The load's circuit and its ancestors, innermost first (only circuits the site defines).
    circuits: tuple[str, ...]
    memory: LoadMemory
    #: What the load draws now, per site phase (as reported; see :mod:`.follow` for what of it counts).
    draw: dict[Phase, float]
    #: When the load's state was stamped.
    ts: datetime
    #: Per leg, what it may draw on its own when uncontrolled (0: nothing known).
    fallback: float = 0.0
    #: Set when the load cannot run at all (phase outside the site, empty current range): the sentence.
    unfit: str | None = None
    #: Claims and break before make (:mod:`.follow`): its state is fresh; a lowering not followed yet;
    #: no change within the follow time; per-leg current reserved until it follows; draw counted per phase.
    fresh: bool = True
    pending: bool = False
    settled: bool = True
    reserved: float = 0.0
    #: Per leg: an unmeasured load's allocation it may not draw yet (raised recently), reserved in the guard.
    unsure: float = 0.0
    claim: dict[Phase, float] = field(default_factory=dict)
    amount: float = 0.0
    reason: Reason = Reason.OK
    #: What the binding limit was: (subject, value) for the sentence.
    subject: str = ""
    room: float = 0.0
    available: float | None = None
    #: Stability: the amount is a timer hold (min_run, grace), fitted after every other load.
    hold: bool = False
    #: Got (at least) its floor in the current pass: it may be topped up.
    started: bool = False
    target: float = 0.0
    #: Grace timer: since when the surplus has been short while the load runs.
    short_since: datetime | None = None
    #: Which pool the load's mode draws on (see :mod:`.strategies`).
    pool: str = "grid"
    #: Phase switching (:mod:`.phases`): the user's choice (None: no switching), the site phases of its one-
    #: and three-phase wiring, the count in effect, a pause around a switch, its memory and a note to explain.
    phase_choice: PhaseChoice | None = None
    phase_options: tuple[tuple[Phase, ...], tuple[Phase, ...]] = ((), ())
    phase_count: int = 0
    switch_pause: bool = False
    switched_from: int = 0
    phase_wish_since: datetime | None = None
    phase_switches: tuple[datetime, ...] = ()
    phase_note: str = ""

    @property
    def floor(self) -> float:
        """The smallest non-zero amount the load can take."""
        return self.steps[0] if self.steps else self.minimum

    @property
    def was_running(self) -> bool:
        """The previous decision let it run."""
        return self.memory.current > EPS or self.memory.on

    @property
    def wants_power(self) -> bool:
        """Active (or finishing is not), enabled, not off, able to run: it competes for the budget."""
        return (
            self.enabled
            and self.unfit is None
            and self.status is LoadStatus.ACTIVE
            and (self.mode is not Mode.OFF or self.must_run)
        )

    def quantize(self, amount: float) -> float:
        """The largest amount the load can take that is not above ``amount`` (0 if below its floor)."""
        if amount > self.cap:
            amount = self.cap
        if self.steps:
            best = 0.0
            for step in self.steps:
                if step <= amount + EPS:
                    best = step
                else:
                    break
            return best
        if amount + EPS < self.minimum or amount <= EPS:
            return 0.0
        return max(amount, self.minimum)


Wiring = tuple[tuple[tuple[Phase, int], ...], dict[Phase, int], str, tuple[tuple[Phase, Phase, int], ...], str]


@lru_cache(maxsize=512)
def work_out_wiring(phases: tuple[Phase, ...], site_order: tuple[Phase, ...]) -> Wiring:
    """Weights, label, imbalance pairs and phases outside the site, for one way a load is wired.

    A pure function of its arguments, memoised (loads share a handful of wirings): the cache changes
    nothing but the time a decision takes."""
    counts: dict[Phase, int] = {}
    for p in phases:
        counts[p] = counts.get(p, 0) + 1
    outside = ", ".join(p.value for p in counts if p not in site_order)
    pairs: list[tuple[Phase, Phase, int]] = []
    for p, kp in counts.items():
        for q in site_order:
            kq = counts.get(q, 0)
            if kp > kq:
                pairs.append((p, q, kp - kq))
    return tuple(counts.items()), counts, "/".join(p.value for p in counts), tuple(pairs), outside


def switch_legs(state: LoadState, count: int) -> tuple[Leg, ...]:
    """The legs a switching load uses on ``count`` phases: its one-phase leg, or every leg it has wired."""
    wired = tuple(leg for leg in (Leg.L1, Leg.L2, Leg.L3) if leg in state.legs)
    if count == 1:
        return (state.one_phase_leg,) if state.one_phase_leg in state.legs else wired[:1]
    return wired


def rewire(view: LoadView, phases: tuple[Phase, ...], site_order: tuple[Phase, ...]) -> None:
    """Point the view at other site phases (a phase switch): weights, label, legs and imbalance pairs."""
    weights, weight_map, label, pairs, outside = work_out_wiring(phases, site_order)
    view.phases, view.weights, view.weight_map, view.label, view.pairs = phases, weights, weight_map, label, pairs
    view.legs = len(phases)
    if outside:
        view.unfit = f"it is wired to phase {outside}, which the site does not have"


def circuit_chain(circuit: str | None, parents: dict[str, str | None]) -> tuple[str, ...]:
    """The circuit and its ancestors, innermost first; unknown circuits are ignored, cycles cut."""
    chain: list[str] = []
    while circuit is not None and circuit in parents and circuit not in chain:
        chain.append(circuit)
        circuit = parents[circuit]
    return tuple(chain)


def build_views(settings: SiteSettings, loads: list[LoadInput]) -> list[LoadView]:
    """Flatten every load input into a :class:`LoadView` (effective mode, range, steps, circuits)."""
    parents = {c.id: c.parent for c in settings.circuits}
    chains: dict[str | None, tuple[str, ...]] = {None: ()}
    site_order = tuple(settings.phases)
    voltage = settings.voltage
    site_mode = settings.mode
    onoff, stepped = LoadKind.ONOFF, LoadKind.STEPPED
    # Loads share a handful of wirings: work each out once per decision.
    wirings: dict[tuple[Phase, ...], Wiring] = {}
    views: list[LoadView] = []
    for index, item in enumerate(loads):
        state = item.state
        ls = item.settings
        mode = ls.mode if ls is not None and ls.mode is not None else site_mode
        legs_map = state.legs
        choice = ls.phases if ls is not None and state.phase_switching else None
        if choice is None:
            phases = tuple([legs_map[leg] for leg in state.phases_in_use])
        else:  # a switching load draws on the phases last decided (see .phases)
            one = tuple([legs_map[leg] for leg in switch_legs(state, 1)])
            three = tuple([legs_map[leg] for leg in switch_legs(state, 3)])
            count = item.memory.phase_count or (1 if len(state.phases_in_use) == 1 else 3)
            phases = one if count == 1 else three
        wiring = wirings.get(phases)
        if wiring is None:
            wiring = wirings[phases] = work_out_wiring(phases, site_order)
        weights, weight_map, label, pairs, outside = wiring
        legs = len(phases)
        unfit: str | None = None
        kind = state.kind
        lo = state.min_current
        hi = state.max_current
        if kind is stepped and hi <= 0.0:
            hi = max(state.steps)
        if ls is not None:
            if ls.min_current is not None and ls.min_current > lo:
                lo = ls.min_current
            if ls.max_current is not None and ls.max_current < hi:
                hi = ls.max_current
        steps: tuple[float, ...] = ()
        if kind is onoff:
            rated = state.rated_power
            on_current = rated / (voltage * legs) if rated and voltage > 0 else state.max_current
            if ls is not None and ls.max_current is not None and on_current > ls.max_current + EPS:
                unfit = f"its on current {on_current:.1f} A is above its {ls.max_current:.1f} A maximum setting"
            lo = hi = on_current
            steps = (on_current,)
        elif kind is stepped:
            steps = tuple(sorted({s for s in state.steps if s > EPS and lo - EPS <= s <= hi + EPS}))
            if not steps:
                unfit = f"none of its steps lies between {lo:.1f} A and {hi:.1f} A"
            else:
                lo, hi = steps[0], steps[-1]
        if unfit is None and hi + EPS < lo:
            unfit = f"its maximum {hi:.1f} A is below its minimum {lo:.1f} A"
        if outside:
            unfit = f"it is wired to phase {outside}, which the site does not have"
        if unfit is None and hi <= EPS:
            unfit = "its maximum current is 0 A"
        if lo < EPS:
            lo = 0.0
        must_run = state.must_run
        chain = chains.get(state.circuit)
        if chain is None:
            chain = chains[state.circuit] = circuit_chain(state.circuit, parents)
        views.append(
            LoadView(
                index,
                state.load,
                kind,
                phases,
                weights,
                weight_map,
                label,
                pairs,
                legs,
                lo,
                hi if hi > 0.0 else 0.0,
                hi if hi > 0.0 else 0.0,
                steps,
                mode,
                MUST_RUN_URGENCY if must_run else URGENCY[mode],
                ls.priority if ls is not None else 5,
                state.status,
                must_run,
                ls.enabled if ls is not None else True,
                chain,
                item.memory,
                state.draw,
                state.ts,
                state.fallback_current or 0.0,
                unfit,
            )
        )
        if choice is not None:
            view = views[-1]
            view.phase_choice, view.phase_options, view.phase_count = choice, (one, three), count
    return views
