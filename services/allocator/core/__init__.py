"""The allocator core: ``allocate(snapshot, now) -> Allocation``, a pure function of a site snapshot.

No I/O, no clock reads, no globals: the same snapshot and ``now`` give the same allocation. Modules:
:mod:`.views` (loads flattened), :mod:`.ordering`, :mod:`.pools` (house load, freshness, physical / surplus /
excess pools; battery: :mod:`.battery`), :mod:`.budget` (hard limits: fuse per phase, max import, circuits, imbalance),
:mod:`.strategies` (modes and the four strategies), :mod:`.stability` (smoothing and anti-flicker timers),
:mod:`.safety` (final fit into the hard limits), :mod:`.explain` (reasons, sentences, table),
:mod:`.output` (fast construction of the output models), :mod:`.external_limit` (grid-operator limits),
:mod:`.allocate` (the steps in order). The only
module-level state is immutable constants and a memo of a pure function (:func:`.views.work_out_wiring`).

Decisions on points the issue leaves open:

* **Safety invariant.** Per phase ``house + Σ allocations ≤ fuse_limit − margin`` and per circuit
  ``Σ member allocations (+ draw of members not counted on) ≤ circuit.limit − margin``, where
  ``house = grid − Σ draw`` of the loads that get a setpoint, each on the phases it uses now (a draw reported
  on another phase stays house load). Faulted/unavailable loads are not counted on: their draw stays in the
  house load (and on their circuits) and they get 0. Off, disabled and idle loads get a setpoint of 0, so
  their draw is taken out of the house load like any other.
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
  Timers do not hold anything on stale data, and a load within its minimum pause stays paused. Readings
  from the future count as fresh.
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
* The imbalance limit bounds ``max − min`` of ``house + allocations`` over the site's phases; an allocation
  never widens a spread beyond it (a house that is already beyond it is not the allocator's to fix).
"""

from .allocate import allocate

__all__ = ["allocate"]
