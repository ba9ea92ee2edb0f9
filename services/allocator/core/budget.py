"""What is left to give: the hard limits (fuse per phase, max import, circuits, imbalance) and the power pools.

Every limit is a sum of the loads' currents, so taking an amount for one load simply lowers what is left;
a load's *room* is the largest per-leg increase every limit on its phases still allows, with the limit that
binds first (for the reason and the sentence).
"""

from __future__ import annotations

from shared.models.base import Phase
from shared.models.setpoint import Reason
from shared.models.settings import SiteSettings

from .follow import NOT_COUNTED, fallback_reserve
from .pools import Pools
from .views import EPS, LoadView

INF = float("inf")
FUSE, IMPORT, CIRCUIT, IMBALANCE = Reason.FUSE_LIMIT, Reason.IMPORT_LIMIT, Reason.CIRCUIT_LIMIT, Reason.IMBALANCE_LIMIT


class Budget:
    """Headroom per phase, under the import limit, per circuit and phase, plus the solar pools (leg-amps)."""

    __slots__ = (
        "circuit_left",
        "excess_left",
        "imbalance",
        "import_left",
        "level",
        "phase_left",
        "surplus_left",
    )

    phase_left: dict[Phase, float]
    import_left: float | None
    circuit_left: dict[str, dict[Phase, float]]
    #: House plus allocations per phase (for the imbalance limit).
    level: dict[Phase, float]
    imbalance: float | None
    surplus_left: float
    excess_left: float

    @classmethod
    def start(cls, settings: SiteSettings, pools: Pools, views: list[LoadView], guard: bool = False) -> Budget:
        """The budget before any allocation. ``guard``: break before make (:mod:`.follow`) — every load's
        ``reserved`` current is taken up front, and :meth:`take_above` charges only what goes beyond it."""
        budget = cls()
        budget.phase_left = dict(pools.physical)
        budget.import_left = pools.import_room
        margin = settings.margin
        budget.circuit_left = {c.id: dict.fromkeys(pools.phases, c.limit - margin) for c in settings.circuits}
        if budget.circuit_left:
            for view in views:
                if view.circuits and view.status in NOT_COUNTED:
                    # Not counted on: what it draws now, and what it may draw on its own, stays on its circuits.
                    extra = fallback_reserve(view)
                    for c in view.circuits:
                        left = budget.circuit_left[c]
                        for p, amps in view.draw.items():
                            if p in left:
                                left[p] -= amps
                        for p, amps in extra.items():
                            if p in left:
                                left[p] -= amps
        budget.level = dict(pools.house)
        budget.imbalance = settings.imbalance_limit if len(pools.phases) > 1 else None
        budget.surplus_left = pools.surplus
        budget.excess_left = pools.excess
        if guard:
            for view in views:
                held = view.reserved + view.unsure
                if held > EPS:
                    budget._reserve(view, held)
        return budget

    def _reserve(self, load: LoadView, amps: float) -> None:
        """Take ``amps`` per leg for the load on the phases the budget knows (a stale phase gets nothing anyway)."""
        phase_left = self.phase_left
        level = self.level
        for p, k in load.weights:
            if p in phase_left:
                phase_left[p] -= k * amps
                level[p] += k * amps
        if self.import_left is not None:
            self.import_left -= load.legs * amps
        for c in load.circuits:
            left = self.circuit_left[c]
            for p, k in load.weights:
                if p in left:
                    left[p] -= k * amps

    def copy(self) -> Budget:
        other = Budget()
        other.phase_left = dict(self.phase_left)
        other.import_left = self.import_left
        other.circuit_left = {c: dict(left) for c, left in self.circuit_left.items()}
        other.level = dict(self.level)
        other.imbalance = self.imbalance
        other.surplus_left = self.surplus_left
        other.excess_left = self.excess_left
        return other

    def hard_room(self, load: LoadView) -> tuple[float, Reason, str]:
        """The largest per-leg increase the hard limits allow the load, and the limit that binds."""
        room = INF
        reason = Reason.OK
        subject = ""
        phase_left = self.phase_left
        for p, k in load.weights:
            r = phase_left[p] / k
            if r < room:
                room, reason, subject = r, FUSE, p
        if self.import_left is not None:
            r = self.import_left / load.legs
            if r < room:
                room, reason, subject = r, IMPORT, ""
        for c in load.circuits:
            left = self.circuit_left[c]
            for p, k in load.weights:
                r = left[p] / k
                if r < room:
                    room, reason, subject = r, CIRCUIT, c
        if self.imbalance is not None and load.pairs:
            r, pair = self._imbalance_room(load)
            if r < room:
                room, reason, subject = r, IMBALANCE, pair
        return room, reason, subject

    def _imbalance_room(self, load: LoadView) -> tuple[float, str]:
        """Adding ``d`` per leg raises phase p by k_p * d; for every pair the spread must stay within the limit."""
        limit = self.imbalance
        assert limit is not None
        level = self.level
        room = INF
        pair = ""
        for p, q, dk in load.pairs:
            lp = level.get(p)
            lq = level.get(q)
            if lp is None or lq is None:
                return 0.0, f"{p}-{q}"  # a phase without a reading: nothing is known to fit
            r = (limit - lp + lq) / dk
            if r < room:
                room, pair = r, f"{p}-{q}"
        return room, pair

    def take(self, load: LoadView, delta: float) -> None:
        """Give the load ``delta`` more per leg."""
        phase_left = self.phase_left
        level = self.level
        for p, k in load.weights:
            phase_left[p] -= k * delta
            level[p] += k * delta
        legs_delta = load.legs * delta
        if self.import_left is not None:
            self.import_left -= legs_delta
        for c in load.circuits:
            left = self.circuit_left[c]
            for p, k in load.weights:
                left[p] -= k * delta
        self.surplus_left -= legs_delta
        self.excess_left -= legs_delta

    def take_above(self, load: LoadView, delta: float) -> None:
        """Give the load ``delta`` more per leg on a guarded budget: its cost is max(amount, reserved)."""
        reserved = load.reserved
        before = load.amount if load.amount > reserved else reserved
        after = load.amount + delta
        if after > before:
            self.take(load, after - before)
