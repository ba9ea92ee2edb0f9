"""Grid-operator limits (§14a EnWG and the like): which limit is in force, and how it binds the decision.

The snapshot carries the operator's last signal and the site's policy for it
(:class:`~shared.models.grid_limit.GridLimitInput`). At ``now``:

* a **required** source not heard for ``signal_timeout`` (or never) → the configured ``fallback`` applies;
* else the last signal applies until its ``valid_until`` (an expired signal just ends: no limit);
* else no limit.

The limit sits above every mode and priority, as a hard limit: the site import limit lowers the import room
(the lower of it and ``max_import_power``, each less the ``power_buffer``); a load cap lowers each capped
load's maximum (W → A per leg by its legs in use and the site voltage; stepped loads keep the steps below it).
A load whose minimum (its lowest step, or an on/off load's on current) is above its cap does not compete: it
pauses with reason ``grid_operator_limit``. A load held at its cap, or back by the operator's import limit,
gets that reason too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.models.grid_limit import GridLimitInput, GridLimitOrigin, GridLimitState, GridLimitValues
from shared.models.setpoint import Reason
from shared.models.settings import SiteSettings

from .pools import Pools
from .views import EPS, LoadView

OPERATOR = Reason.GRID_OPERATOR_LIMIT
#: No limit (immutable: shared by every decision without one).
NO_LIMIT = GridLimitValues()


@dataclass(slots=True)
class OperatorLimit:
    """The grid-operator limit in force for one decision, and what it did to the loads."""

    origin: GridLimitOrigin
    values: GridLimitValues
    source: str = ""
    valid_until: datetime | None = None
    heard: datetime | None = None
    why: str = ""
    #: The cap (W) of every load whose maximum it lowered, by view index.
    caps: dict[int, float] = field(default_factory=dict)
    #: Views whose minimum is above their cap: they do not compete.
    paused: set[int] = field(default_factory=set)
    #: The operator's import limit is below the site's own: an import limit that binds is the operator's.
    import_binds: bool = False

    @property
    def in_force(self) -> bool:
        return self.origin is not GridLimitOrigin.NONE and self.values.limits


def _watts(value: float) -> str:
    return f"{value / 1000:.1f} kW"


def limit_in_force(grid: GridLimitInput | None, now: datetime) -> OperatorLimit:
    """The limit that applies at ``now`` (``origin`` NONE: no limit)."""
    if grid is None:
        return OperatorLimit(GridLimitOrigin.NONE, NO_LIMIT)
    signal = grid.signal
    heard = signal.heard if signal is not None else None
    if grid.required and grid.fallback is not None:
        silent_for = (now - heard).total_seconds() if heard is not None else None
        if silent_for is None or silent_for > grid.signal_timeout:
            since = "never heard" if heard is None else f"silent for {silent_for:.0f} s"
            return OperatorLimit(GridLimitOrigin.FALLBACK, grid.fallback, signal.source if signal else "", None, heard,
                                 f"the grid operator's signal is {since} (timeout {grid.signal_timeout:g} s): "
                                 "the safe fallback applies")
    if signal is None:
        return OperatorLimit(GridLimitOrigin.NONE, NO_LIMIT)
    if signal.valid_until is not None and now >= signal.valid_until:
        return OperatorLimit(GridLimitOrigin.NONE, NO_LIMIT, signal.source, signal.valid_until, heard,
                             f"the limit from {signal.source} expired")
    if not signal.values.limits:
        return OperatorLimit(GridLimitOrigin.NONE, NO_LIMIT, signal.source, None, heard,
                             f"{signal.source} sets no limit")
    return OperatorLimit(GridLimitOrigin.SIGNAL, signal.values, signal.source, signal.valid_until, heard,
                         f"set by {signal.source}")


def cap_loads(limit: OperatorLimit, views: list[LoadView], voltage: float) -> None:
    """Lower each capped load's maximum to its cap; mark the loads whose minimum is above it as paused."""
    if not limit.in_force or voltage <= 0.0:
        return
    values = limit.values
    common = values.controllable_cap_w
    per_load = values.load_cap_w
    for view in views:
        watts = per_load.get(view.id)
        if common is not None and (watts is None or common < watts):
            watts = common
        if watts is None or view.legs == 0:
            continue
        amps = watts / (voltage * view.legs)
        if amps + EPS >= view.maximum:
            continue  # the cap is above anything it can take
        limit.caps[view.index] = watts
        steps = tuple(s for s in view.steps if s <= amps + EPS)
        if view.steps:
            fits, top = bool(steps), (steps[-1] if steps else 0.0)
        else:
            fits, top = amps > EPS and amps + EPS >= view.minimum, amps
        if not fits:
            # Its minimum (lowest step, on current) is above the cap: it pauses.
            limit.paused.add(view.index)
            view.reason, view.room, view.subject = OPERATOR, amps, f"{_watts(watts)} per load"
            view.maximum = view.cap = 0.0
            continue
        if view.steps:
            view.steps = steps
        view.maximum = top
        if view.cap > top:
            view.cap = top


def lower_import(limit: OperatorLimit, pools: Pools, settings: SiteSettings) -> None:
    """The operator's import limit lowers the import room (the room counts per leg-amp, like the pools)."""
    watts = limit.values.import_limit_w if limit.in_force else None
    if watts is None or pools.stale or settings.voltage <= 0.0:
        return
    room = (watts - settings.power_buffer) / settings.voltage - sum(pools.house.values())
    if pools.import_room is None or room < pools.import_room:
        pools.import_room = room
        limit.import_binds = True


def relabel(limit: OperatorLimit, views: list[LoadView]) -> None:
    """After the refit: a load the import limit held back, where that limit is the operator's, says so."""
    if not limit.import_binds:
        return
    words = f"{_watts(limit.values.import_limit_w or 0.0)} site import"
    for view in views:
        if view.reason is Reason.IMPORT_LIMIT:
            view.reason, view.subject = OPERATOR, words


def decision_reason(limit: OperatorLimit, view: LoadView, reason: Reason, amount: float) -> Reason:
    """A load that got all its cap allows (or was paused by it) is held by the operator, whatever else."""
    if view.index in limit.paused:
        return reason if reason is Reason.STALE_DATA else OPERATOR
    watts = limit.caps.get(view.index)
    if watts is not None and reason in (Reason.OK, Reason.MUST_RUN) and amount + EPS >= view.maximum:
        view.reason, view.subject = OPERATOR, f"{_watts(watts)} per load"
        return OPERATOR
    return reason


def state(limit: OperatorLimit, site: str, now: datetime, binding: list[str]) -> GridLimitState:
    """What is in force, for the retained ``<site>/grid-limit`` topic (and ``ampmq allocate``)."""
    values = limit.values
    in_force = limit.in_force
    return GridLimitState(
        site=site,
        ts=now,
        in_force=in_force,
        origin=limit.origin if in_force else GridLimitOrigin.NONE,
        source=limit.source,
        import_limit_w=values.import_limit_w if in_force else None,
        controllable_cap_w=values.controllable_cap_w if in_force else None,
        load_cap_w=dict(values.load_cap_w) if in_force else {},
        valid_until=limit.valid_until if in_force else None,
        heard=limit.heard,
        binding=binding,
        why=limit.why,
    )
