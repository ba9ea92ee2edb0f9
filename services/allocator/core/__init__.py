"""The allocator core: ``allocate(snapshot, now) -> Allocation``, a pure function of a site snapshot.

No I/O, no clock reads, no globals: the same snapshot and ``now`` give the same allocation. Modules:
:mod:`.views` (loads flattened), :mod:`.ordering`, :mod:`.follow` (claims that age, break before make),
:mod:`.pools` (house load, freshness, physical / surplus / excess pools; battery: :mod:`.battery`),
:mod:`.budget` (hard limits: fuse per phase, max import, circuits, imbalance),
:mod:`.strategies` (modes and the four strategies), :mod:`.stability` (smoothing and anti-flicker timers),
:mod:`.safety` (final fit into the hard limits), :mod:`.explain` (reasons, sentences, table),
:mod:`.output` (fast construction of the output models), :mod:`.external_limit` (grid-operator limits),
:mod:`.phases` (1p/3p switching),
:mod:`.allocate` (the steps in order). The only
module-level state is immutable constants and a memo of a pure function (:func:`.views.work_out_wiring`).

Decisions on points the issue leaves open:

* **Safety invariant.** Per phase ``house + Σ allocations ≤ fuse_limit − margin`` and per circuit
  ``Σ member allocations (+ draw and fallback of members not counted on) ≤ circuit.limit − margin``, where
  ``house = grid − Σ claim + Σ fallback reserve``. A load's *claim* (:mod:`.follow`) is its reported draw on
  the phases it uses now (a draw reported on another phase stays house load), counted only while its state
  is fresh (``timers.load_stale_after``, at most ``future_tolerance`` ahead) and only up to its allocation —
  or the one it was lowered from, until it follows — plus ``draw_tolerance`` per leg (a load not decided on
  yet, its memory empty: up to its maximum); a phase it reports no draw on counts as its allocation.
  Faulted/unavailable loads are not counted on: they get 0, their draw stays in the house load (and on their
  circuits), and what they may draw on their own beyond it (``LoadState.fallback_current``, an OCPP
  charger's baseline) is reserved. Off, disabled and idle loads get a setpoint of 0; their draw is taken out
  of the house load only while they follow their lowering.
* **Break before make.** A decision never counts on current it has just taken away: a load goes above its
  previous allocation only where it fits with every other load counted at ``max(new allocation,
  reserved)``, ``reserved`` being the largest of its previous allocation, its claimed draw, and the one it
  was lowered from until its fresh draw, stamped after the lowering, is at most its new allocation +
  ``draw_tolerance`` or ``timers.follow_time`` has passed (:class:`LoadMemory` ``lowered_from``,
  ``raised_from``, ``changed_at``). An increase that does not fit waits (reason awaiting_follow); a load may
  always keep its previous allocation, and decreases are never delayed. With the loads following within
  ``follow_time``, the *measured* current stays within the fuse except for the house's own steps, cut within
  one decision (tests/allocator_core/test_closed_loop_safety.py).
* **Inverter limits** never add to the fuse budget (the fuse is at the grid connection; the invariant is
  measured there). They cap the battery's contribution to the surplus pool instead: ``max_power`` and
  ``max_power_per_phase`` times the phases, less the inverter's present output.
* **Surplus and excess are power pools** netted over the phases (as meters net them), consumed in leg-amps;
  fuses, circuits and the imbalance limit are per phase. Every allocation lowers the solar pools. With
  ``surplus_per_phase`` the surplus pool is the level every phase exports times the phases (an asymmetric
  inverter's battery help poured onto the shortest phases first).
* **allow_grid_charging=False**: Standard and Solar Priority loads may not take grid import at all — they
  behave as Solar Only (keeping their urgency for ordering), and no load is held at its minimum from the grid
  by min_run or grace (they pause at once; min_pause and the smoothing still damp flicker). Continuous on/off
  loads and must-run loads are exempt.
* **Continuous** on a load that is not on/off behaves as Standard.
* **Power and current** convert with ``SiteSettings.voltage`` (measured voltages are not used). The
  ``power_buffer`` is kept below ``max_import_power``; the fuse keeps its own ``margin``. An on/off load's
  per-leg current is ``rated_power / (voltage × legs in use)`` (else its ``max_current``).
* **must_run** runs whatever the mode (even Off), before every mode, within the hard limits; a load disabled
  in its settings stays at 0 even when it must run.
* **Stale data** (no measurement, a site phase without a grid reading or one older than
  ``timers.stale_after``): loads whose mode may take grid power for their minimum (Standard, Continuous,
  Solar Priority, must-run) get their minimum when every phase they use has a fresh reading and it fits there
  (and no max-import or imbalance limit depends on an unknown phase); everyone else 0; reason stale_data.
  Timers do not hold anything on stale data, and a load within its minimum pause stays paused. A reading
  stamped more than ``timers.future_tolerance`` ahead of ``now`` is from the future: not fresh.
* **Battery** (:mod:`.battery`): SOC unknown on a battery site → battery first (Solar Only gets nothing,
  Solar Priority its minimum, no excess). Above target (latched from ``target_soc`` until it falls below
  ``target_soc − hysteresis``, never below ``min_soc``) the surplus is export + the battery's charge + what
  it may still discharge (only with ``max_discharge_power``) — the discharge already in the export is not
  taken off again, so the offer does not depend on what a load draws. Excess needs a battery that can take
  no more: full (latched from ``full_soc``, default 97 %, until ``full_soc − hysteresis``) or saturated (at
  its maximum rate, or above target charging below it while the site exports; remembered with its charge
  until it discharges, and what it charges less since comes off the excess).
* **Restarts**: a load that ran and was paused restarts only with 1 A more hard room than its minimum
  (:mod:`.restart`). **Excess loads** share only what every other load leaves (:func:`.strategies.excess_last`).
* **Finishing** loads are treated like idle ones: 0, with an ``available`` figure.
* **Excess "once it is there, at least the minimum"**: an Excess load starts only when the excess covers its
  minimum (it is *truly* excess power); once it runs (the previous decision let it), it keeps at least its
  minimum while any excess is left, and follows the excess above that — a start/stop hysteresis on top of
  min_run and grace.
* Circuits are applied as limits during the allocation itself (same ordering), so budget a circuit cannot
  use goes to the next load; a load naming a circuit the site does not define is limited by the main fuse only.
* **Grid-operator limits** (:mod:`.external_limit`, §14a EnWG): the snapshot's ``grid_limit`` (the last signal, a
  silence policy with a fallback) gives a site import limit (lowering the import room like ``max_import_power``)
  and per-load caps (W → A per leg; a load whose minimum is above its cap pauses), above every mode and
  priority; a load they hold back gets reason ``grid_operator_limit``. Expiry and silence are judged at ``now``.
* **Phase switching** (:mod:`.phases`): a load whose adapter can switch and whose settings say ``phases``
  draws on the phases last decided; ``auto`` picks 3 when its pool carries 3 × its minimum, else 1 (grid
  modes: 3), after a delay up/down while it runs, at most N an hour; a switch pauses it (reason
  ``phase_switch``) and it restarts from 0 on the new phases under the usual break before make.
* The imbalance limit bounds ``max − min`` of ``house + allocations`` over the site's phases; an allocation
  never widens a spread beyond it (a house that is already beyond it is not the allocator's to fix).
"""

from .allocate import allocate

__all__ = ["allocate"]
