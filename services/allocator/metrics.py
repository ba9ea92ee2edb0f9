"""The allocator's metrics: its decisions, how long they take, their reasons, and each site's phases.

The decision path only keeps references and adds to plain counters (:meth:`AllocatorMetrics.decided`); the
per-site series are computed from the latest measurement, settings and allocation when Prometheus scrapes.
Sites are labelled only once this instance serves them, and only configured sites are served, so the label
sets stay as small as the config.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from shared.models import Allocation

from .state import Registry

#: Decision time buckets (s): the core takes about a millisecond on a small site.
DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class AllocatorMetrics(Collector):
    """Counters the decision path adds to, and the site gauges read from the registry when scraped."""

    def __init__(self, registry: Registry, prometheus: CollectorRegistry) -> None:
        self.registry = registry
        self.latency = Histogram("ampmq_allocator_decision_seconds",
                                 "Time to decide one site: snapshot, the core, setpoints handed to the connection.",
                                 buckets=DECISION_BUCKETS, registry=prometheus)
        #: Site -> decisions made, and those that failed (the core raised: reported as allocation_failed).
        self.decisions: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        #: Reason -> setpoints decided with it (every load of every decision, changed or not).
        self.reasons: dict[str, int] = {}
        #: Site -> its latest allocation.
        self.latest: dict[str, Allocation] = {}
        prometheus.register(self)

    def decided(self, site: str, allocation: Allocation, seconds: float) -> None:
        self.decisions[site] = self.decisions.get(site, 0) + 1
        self.latest[site] = allocation
        reasons = self.reasons
        for decision in allocation.decisions:
            reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
        self.latency.observe(seconds)

    def failed(self, site: str) -> None:
        self.failures[site] = self.failures.get(site, 0) + 1

    def collect(self) -> Iterable[Metric]:
        decisions = CounterMetricFamily("ampmq_allocator_decisions", "Decisions made, by site.", labels=["site"])
        for site, count in sorted(self.decisions.items()):
            decisions.add_metric([site], count)
        yield decisions
        failures = CounterMetricFamily("ampmq_allocator_decision_failures",
                                       "Decisions the core failed to make (reported as allocation_failed).",
                                       labels=["site"])
        for site, count in sorted(self.failures.items()):
            failures.add_metric([site], count)
        yield failures
        setpoints = CounterMetricFamily("ampmq_allocator_setpoints", "Setpoints decided, by their reason.",
                                        labels=["reason"])
        for reason, count in sorted(self.reasons.items()):
            setpoints.add_metric([str(reason)], count)
        yield setpoints
        yield from self._sites()

    def _sites(self) -> Iterable[Metric]:
        # Samples made directly (a few hundred sites: thousands of them, read in the event loop)
        current = Metric("ampmq_site_current_amperes", "Grid current per phase as last measured (import positive).",
                         "gauge")
        limit = Metric("ampmq_site_limit_amperes", "The fuse limit less the margin, per phase: what the current "
                       "must stay under.", "gauge")
        headroom = Metric("ampmq_site_headroom_amperes", "What the latest decision left unallocated under the "
                          "limit, per phase.", "gauge")
        loads = Metric("ampmq_site_loads", "Loads by the reason of their latest setpoint.", "gauge")
        stale = Metric("ampmq_site_stale", "1 while the latest decision had no fresh grid data (every load at its "
                       "safe minimum).", "gauge")
        for site_id, site in sorted(self.registry.sites.items()):
            if not site.served:
                continue
            settings = site.settings
            under = settings.fuse_limit - settings.margin
            limit.samples.extend(Sample(limit.name, {"site": site_id, "phase": phase.value}, under)
                                 for phase in settings.phases)
            if site.measurement is not None:
                current.samples.extend(Sample(current.name, {"site": site_id, "phase": phase.value}, reading.value)
                                       for phase, reading in sorted(site.measurement.grid_current.items()))
            allocation = self.latest.get(site_id)
            if allocation is None:
                continue
            headroom.samples.extend(Sample(headroom.name, {"site": site_id, "phase": phase.value}, amps)
                                    for phase, amps in sorted(allocation.headroom.items()))
            counts: dict[str, int] = {}
            for decision in allocation.decisions:
                counts[decision.reason.value] = counts.get(decision.reason.value, 0) + 1
            loads.samples.extend(Sample(loads.name, {"site": site_id, "reason": reason}, count)
                                 for reason, count in sorted(counts.items()))
            stale.samples.append(Sample(stale.name, {"site": site_id}, 1.0 if allocation.stale else 0.0))
        yield from (current, limit, headroom, loads, stale)


__all__ = ["DECISION_BUCKETS", "AllocatorMetrics"]
