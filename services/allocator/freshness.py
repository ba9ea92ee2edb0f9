"""Freshness judged on the allocator's own clock, not on the sender's.

Each reading and load state carries the sender's ``ts``. When one arrives, its effective ``ts`` becomes the
earlier of that stamp and the time it was received (on the allocator's clock): a sender whose clock runs
behind makes its data look older (safe), one whose clock runs ahead cannot make it look newer than it is.
A stamp more than ``tolerance`` seconds ahead of the receive time is not trusted at all: the reading is
dropped from the measurement (so the core sees it missing and falls to safe minimums), a load state from
the future leaves the load unavailable, and the caller reports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from shared.models import LoadState, SiteMeasurement
from shared.models.measurement import Reading

R = TypeVar("R", bound=Reading)

#: The optional single readings of a measurement (the per-phase ones are ``grid_current`` and ``voltage``).
SINGLE_READINGS = ("grid_power", "solar_power", "battery_soc", "battery_power")


@dataclass(slots=True)
class Judged:
    """A measurement as the allocator trusts it, and the names of the readings stamped in the future."""

    measurement: SiteMeasurement
    future: list[str] = field(default_factory=list)


def _judge(reading: R, received: datetime, tolerance: timedelta) -> R | None:
    if reading.ts > received + tolerance:
        return None
    return reading if reading.ts <= received else reading.model_copy(update={"ts": received})


def judge_measurement(measurement: SiteMeasurement, received: datetime, tolerance: float) -> Judged:
    """``measurement`` with every reading's ``ts`` at most ``received``, and those from beyond the tolerance
    left out."""
    if measurement.ts <= received and all(reading.ts <= received for reading in _readings(measurement)):
        return Judged(measurement)  # (nearly every one: stamped before it came) as it is, no copy made
    ahead = timedelta(seconds=tolerance)
    future: list[str] = []
    update: dict[str, object] = {"ts": min(measurement.ts, received)}
    for name in ("grid_current", "voltage"):
        kept = {}
        for phase, reading in getattr(measurement, name).items():
            judged = _judge(reading, received, ahead)
            if judged is None:
                future.append(f"{name} on phase {phase.value} ({_ahead(reading.ts, received)})")
            else:
                kept[phase] = judged
        update[name] = kept
    for name in SINGLE_READINGS:
        reading = getattr(measurement, name)
        if reading is None:
            continue
        judged = _judge(reading, received, ahead)
        if judged is None:
            future.append(f"{name} ({_ahead(reading.ts, received)})")
        update[name] = judged
    return Judged(measurement.model_copy(update=update), future)


def _readings(measurement: SiteMeasurement) -> Iterator[Reading]:
    yield from measurement.grid_current.values()
    yield from measurement.voltage.values()
    for name in SINGLE_READINGS:
        reading = getattr(measurement, name)
        if reading is not None:
            yield reading


def judge_state(state: LoadState, received: datetime, tolerance: float) -> tuple[LoadState, str | None]:
    """The state with ``ts`` at most ``received``; and, when it was stamped beyond the tolerance, why it is not
    trusted (None when it is)."""
    if state.ts > received + timedelta(seconds=tolerance):
        return state.model_copy(update={"ts": received}), f"its state is stamped {_ahead(state.ts, received)}"
    return (state if state.ts <= received else state.model_copy(update={"ts": received})), None


def only_renewed(before: LoadState | None, after: LoadState, received: datetime, stale_after: float) -> bool:
    """Whether ``after`` says nothing ``before`` did not, and ``before`` was still well within its freshness
    (younger than half ``stale_after``): an adapter's periodic renewal, which no decision has to follow (a
    thousand loads renew every ten seconds). A state that brings news, or rescues an ageing one, does."""
    if before is None or before.ts < received - timedelta(seconds=stale_after / 2):
        return False
    return before.model_copy(update={"ts": after.ts}) == after


def _ahead(ts: datetime, received: datetime) -> str:
    return f"{(ts - received).total_seconds():.0f} s ahead of the allocator's clock"
