"""The installation's limits: what the config says the wiring can carry, which no message may raise.

The fuse limit, the margin, the circuits' limits, the import power limit and the phase imbalance limit
describe the installation (the main fuse, a sub-feed's breaker, the grid contract). They come from the
config (``allocator.sites``, else the model's defaults). Settings from MQTT, a ``/set`` or retained
settings read back, may only make them safer:

* ``fuse_limit``, a circuit's ``limit``, ``max_import_power`` and ``imbalance_limit`` at most the
  configured value (a configured import or imbalance limit may not be cleared);
* ``margin`` at least the configured value;
* every configured circuit kept, with its configured parent (circuits of one's own may be added: a
  circuit only ever adds a limit);
* every configured phase kept (a phase left out is a phase nobody guards).

:func:`breaches` says what a set of settings raises; :func:`clamped` makes retained settings safe.
"""

from __future__ import annotations

from shared.models import Circuit, SiteSettings


def _amps(value: float) -> str:
    return f"{value:g} A"


def _watts(value: float) -> str:
    return f"{value:g} W"


def breaches(settings: SiteSettings, configured: SiteSettings) -> list[str]:
    """One sentence per limit ``settings`` raise past the ``configured`` installation (empty: none)."""
    found: list[str] = []
    if settings.fuse_limit > configured.fuse_limit:
        found.append(f"fuse_limit {_amps(settings.fuse_limit)} is above the configured fuse limit "
                     f"{_amps(configured.fuse_limit)}")
    if settings.margin < configured.margin:
        found.append(f"margin {_amps(settings.margin)} is below the configured margin {_amps(configured.margin)}")
    if configured.max_import_power is not None and (
            settings.max_import_power is None or settings.max_import_power > configured.max_import_power):
        given = "none" if settings.max_import_power is None else _watts(settings.max_import_power)
        found.append(f"max_import_power {given} is above the configured {_watts(configured.max_import_power)}")
    if configured.imbalance_limit is not None and (
            settings.imbalance_limit is None or settings.imbalance_limit > configured.imbalance_limit):
        given = "none" if settings.imbalance_limit is None else _amps(settings.imbalance_limit)
        found.append(f"imbalance_limit {given} is above the configured {_amps(configured.imbalance_limit)}")
    missing = [p.value for p in configured.phases if p not in settings.phases]
    if missing:
        found.append(f"phases leave out configured phase {', '.join(missing)}")
    given_circuits = {c.id: c for c in settings.circuits}
    for circuit in configured.circuits:
        mine = given_circuits.get(circuit.id)
        if mine is None:
            found.append(f"circuit {circuit.id!r} (configured limit {_amps(circuit.limit)}) is left out")
        elif mine.limit > circuit.limit:
            found.append(f"circuit {circuit.id!r} limit {_amps(mine.limit)} is above the configured "
                         f"{_amps(circuit.limit)}")
        elif mine.parent != circuit.parent:
            found.append(f"circuit {circuit.id!r} must stay behind {circuit.parent or 'the main fuse'} "
                         "as configured")
    return found


def clamped(settings: SiteSettings, configured: SiteSettings) -> SiteSettings:
    """``settings`` with every limit held to the configured installation (unchanged when within it)."""
    if not breaches(settings, configured):
        return settings
    circuits: dict[str, Circuit] = {c.id: c for c in settings.circuits}
    for circuit in configured.circuits:
        mine = circuits.get(circuit.id)
        circuits[circuit.id] = circuit if mine is None else mine.model_copy(
            update={"limit": min(mine.limit, circuit.limit), "parent": circuit.parent})
    phases = list(settings.phases) + [p for p in configured.phases if p not in settings.phases]
    return settings.model_copy(update={
        "fuse_limit": min(settings.fuse_limit, configured.fuse_limit),
        "margin": max(settings.margin, configured.margin),
        "max_import_power": _lower(settings.max_import_power, configured.max_import_power),
        "imbalance_limit": _lower(settings.imbalance_limit, configured.imbalance_limit),
        "phases": phases,
        "circuits": list(circuits.values()),
    })


def _lower(value: float | None, configured: float | None) -> float | None:
    if configured is None:
        return value
    return configured if value is None else min(value, configured)
