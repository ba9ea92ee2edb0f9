"""Small statistics for benchmarks: medians and percentiles over repeats."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; ``values`` need not be sorted."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p99/mean of durations given in seconds, reported in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
        "n": len(seconds),
    }


def ratio(value: float, floor: float) -> float:
    return round(value / floor, 2) if floor > 0 else float("inf")
