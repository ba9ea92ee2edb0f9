"""The meter bridge's metrics: readings accepted and rejected per source, measurements published per site,
and which sources are online — all read from the bridge's own counters when Prometheus scrapes. Sites and
sources are those of the config, so the label sets are as small as it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .bridge import MeterBridge


class MeterBridgeCollector(Collector):
    def __init__(self, bridge: MeterBridge) -> None:
        self.bridge = bridge

    def collect(self) -> Iterable[Metric]:
        readings = CounterMetricFamily(
            "ampmq_meter_readings", "Readings from each source: accepted, rejected as implausible, or unreadable "
            "(a payload the driver could not parse).", labels=["site", "source", "result"])
        online = GaugeMetricFamily("ampmq_meter_source_online", "1 while the source delivers (0 once silent for "
                                   "stale_after, or its driver failed).", labels=["site", "source"])
        published = CounterMetricFamily("ampmq_meter_measurements_published", "Site measurements published.",
                                        labels=["site"])
        for site_id, site in sorted(self.bridge.sites.items()):
            published.add_metric([site_id], site.publisher.published)
            for source_id, channel in sorted(site.channels.items()):
                readings.add_metric([site_id, source_id, "accepted"], channel.accepted)
                readings.add_metric([site_id, source_id, "rejected"], channel.rejected)
                readings.add_metric([site_id, source_id, "unreadable"], channel.unreadable)
                online.add_metric([site_id, source_id], 1.0 if channel.online else 0.0)
        yield from (readings, online, published)


__all__ = ["MeterBridgeCollector"]
