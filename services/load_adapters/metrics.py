"""The load adapters' metrics: commands sent and failed, and availability, per configured load — read from
each adapter's :class:`~.adapter.CommandCounts` when Prometheus scrapes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .adapter import LoadAdapter


class LoadAdaptersCollector(Collector):
    def __init__(self, adapters: Sequence[LoadAdapter[Any]]) -> None:
        self.adapters = adapters

    def collect(self) -> Iterable[Metric]:
        sent = CounterMetricFamily("ampmq_load_commands", "Commands sent to the device (a relay switch, a value, an "
                                   "OCPP command through the gateway).", labels=["site", "load"])
        failed = CounterMetricFamily("ampmq_load_command_failures", "Commands that did not take effect, by error "
                                     "(command_failed, command_rejected, command_not_confirmed, not_sent).",
                                     labels=["site", "load", "error"])
        available = GaugeMetricFamily("ampmq_load_available", "1 while the device is heard from (not silent).",
                                      labels=["site", "load"])
        for adapter in self.adapters:
            sent.add_metric([adapter.site, adapter.load], adapter.commands.sent)
            for error, count in sorted(adapter.commands.failed.items()):
                failed.add_metric([adapter.site, adapter.load, error], count)
            available.add_metric([adapter.site, adapter.load], 0.0 if adapter.silent else 1.0)
        yield from (sent, failed, available)


__all__ = ["LoadAdaptersCollector"]
