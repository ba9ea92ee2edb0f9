"""The gateway's metrics: chargers connected, OCPP calls and their errors by action, the outbox.

Sessions add to :class:`OcppStats` (plain dictionaries, no lock); :class:`GatewayCollector` reads them and
the live sessions when Prometheus scrapes. An action label is always an action of OCPP 1.6 or 2.0.1, or
``unknown``: what a charger sends cannot grow the label set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .gateway import Gateway

#: ``direction`` label values: a CALL a charger sent us, and one we sent a charger (a command from MQTT).
FROM_CHARGER = "from_charger"
TO_CHARGER = "to_charger"
UNKNOWN_ACTION = "unknown"


@dataclass(slots=True)
class OcppStats:
    """What the sessions count: (direction, action) -> CALLs; (direction, action, error) -> failed ones."""

    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    errors: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def call(self, direction: str, action: str) -> None:
        key = (direction, action)
        self.calls[key] = self.calls.get(key, 0) + 1

    def error(self, direction: str, action: str, error: str) -> None:
        key = (direction, action, error)
        self.errors[key] = self.errors.get(key, 0) + 1


class GatewayCollector(Collector):
    """The gateway's series, read from its registry of sessions, its outbox and its :class:`OcppStats`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterable[Metric]:
        gateway = self.gateway
        connected = GaugeMetricFamily("ampmq_ocpp_chargers_connected", "Chargers with an open websocket, by "
                                      "OCPP version.", labels=["version"])
        by_version: dict[str, int] = {"1.6": 0, "2.0.1": 0}
        for session in gateway.registry:
            by_version[session.version.value] = by_version.get(session.version.value, 0) + 1
        for version, count in sorted(by_version.items()):
            connected.add_metric([version], count)
        yield connected
        stats = gateway.context.stats
        calls = CounterMetricFamily("ampmq_ocpp_calls", "OCPP CALLs, by direction and action.",
                                    labels=["direction", "action"])
        for (direction, action), count in sorted(stats.calls.items()):
            calls.add_metric([direction, action], count)
        yield calls
        errors = CounterMetricFamily("ampmq_ocpp_call_errors", "OCPP CALLs that failed, by direction, action and "
                                     "error (from_charger: the CALLERROR code we answered; to_charger: the "
                                     "command result's error).", labels=["direction", "action", "error"])
        for (direction, action, error), count in sorted(stats.errors.items()):
            errors.add_metric([direction, action, error], count)
        yield errors
        outbox = gateway.outbox
        yield GaugeMetricFamily("ampmq_ocpp_outbox_waiting", "Publications queued for MQTT.", value=outbox.pending)
        yield CounterMetricFamily("ampmq_ocpp_outbox_dropped", "Publications dropped because the outbox was full.",
                                  value=outbox.dropped)


__all__ = ["FROM_CHARGER", "TO_CHARGER", "UNKNOWN_ACTION", "GatewayCollector", "OcppStats"]
