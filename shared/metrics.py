"""Prometheus metrics: one registry per service, one ``/metrics`` endpoint per process.

Every :class:`~shared.mqtt.Runtime` owns a ``CollectorRegistry`` (``runtime.metrics``) holding a
:class:`RuntimeCollector` — MQTT connection, messages, inbox, error reports, read from the runtime's own
counters at scrape time, so the message path pays nothing for it — and whatever its service registers
next to it (the allocator's decisions, the gateway's OCPP calls, ...). Services never open a port.

The service runner (:func:`shared.services.run_services`) starts one :class:`Exporter` per process when the
config has a ``metrics`` port::

    metrics:
      port: 9100          # AMPMQ_METRICS__PORT; none (the default): no endpoint
      host: 127.0.0.1     # AMPMQ_METRICS__HOST; 0.0.0.0 in a container

It serves ``GET /metrics`` (the text exposition format) and ``GET /health`` (200 ``online`` while every
service of the process is connected to the broker, 503 naming those that are not). Each series carries a
``service`` label, added by the exporter: ``ampmq run`` puts all four services behind one port, a compose
deployment has one process, and one port, per service, and the series look the same either way.

Runtimes created while an exporter is current (a context variable the runner sets, so each process — or
each test — has its own) register with it under their service name; a restarted service replaces its
predecessor. Collection runs in the event loop, between two messages, never concurrently with a handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from aiohttp import web

    from .mqtt import Runtime

log = logging.getLogger("ampmq.metrics")

# No ``*_created`` series next to each counter and histogram: nothing here graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: How long after a failed bind (the port taken) the exporter tries again (s).
RETRY_BIND = 10.0


class MetricsConfig(BaseModel):
    """``metrics:`` in the config: where this process serves ``/metrics`` (nowhere unless ``port`` is set)."""

    model_config = ConfigDict(extra="forbid")

    #: The TCP port; None: no endpoint (the default). 0 takes any free port (logged; for tests).
    port: Annotated[int, Field(ge=0, le=65535)] | None = None
    #: The address to listen on: loopback unless told otherwise (``0.0.0.0`` in a container).
    host: str = "127.0.0.1"

    @property
    def enabled(self) -> bool:
        return self.port is not None


@dataclass(slots=True)
class _Service:
    registry: CollectorRegistry
    connected: Callable[[], bool]


class Exporter:
    """The process's ``/metrics`` and ``/health``: every registered service's registry, with its name as the
    ``service`` label, plus the process's own CPU, memory and garbage collector series.

    A scrape reads the services' state in the event loop (:meth:`snapshot`: the collectors, about a
    microsecond per series) and formats the text in a worker thread (:func:`render`: prometheus_client's
    formatter takes ten times as long), so a scrape never holds the loop for the formatting."""

    def __init__(self) -> None:
        self.services: dict[str, _Service] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        #: The port bound, once listening (the configured one, or the one the system chose for 0).
        self.port: int | None = None
        self.listening = asyncio.Event()

    def add(self, service: str, registry: CollectorRegistry, connected: Callable[[], bool]) -> None:
        """Serve ``registry`` as ``service`` (replacing a previous instance of that service)."""
        self.services[service] = _Service(registry, connected)

    def snapshot(self) -> Snapshot:
        """Every family as it is now: the process's, then each service's with its name."""
        parts: Snapshot = [(None, list(self.registry.collect()))]
        parts.extend((name, list(service.registry.collect())) for name, service in list(self.services.items()))
        return parts

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format."""
        return render(self.snapshot())

    def health(self) -> tuple[bool, str]:
        """Whether every service is connected to its broker, and a line per service saying so."""
        lines = [f"{name}: {'online' if svc.connected() else 'offline'}" for name, svc in sorted(self.services.items())]
        healthy = bool(self.services) and all(svc.connected() for svc in self.services.values())
        return healthy, "\n".join(lines) + "\n"

    async def serve(self, config: MetricsConfig) -> None:
        """Listen on ``config``'s address until cancelled; a port that cannot be bound is logged and retried
        (metrics never stop the services)."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            while True:
                site = web.TCPSite(runner, config.host, config.port or 0)
                try:
                    await site.start()
                    break
                except OSError as exc:
                    log.error("metrics: cannot listen on %s:%s: %s; retrying in %.0f s", config.host, config.port,
                              exc, RETRY_BIND)
                    await asyncio.sleep(RETRY_BIND)
            self.port = _bound_port(runner)
            self.listening.set()
            log.info("metrics on http://%s:%s/metrics", config.host, self.port)
            await asyncio.Event().wait()
        finally:
            self.listening.clear()
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web

        body = await asyncio.to_thread(render, self.snapshot())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, request: web.Request) -> web.Response:
        from aiohttp import web

        healthy, text = self.health()
        return web.Response(text=text, status=200 if healthy else 503)


#: Families by the service they belong to (None: the process's own).
Snapshot = list[tuple[str | None, list[Metric]]]


def render(snapshot: Snapshot) -> bytes:
    """The text exposition of a :meth:`Exporter.snapshot`: one family per name, each service's samples
    labelled ``service``. Touches nothing but the snapshot, so it may run in any thread."""
    families: dict[str, Metric] = {}
    for service, collected in snapshot:
        for family in collected:
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            if service is None:
                merged.samples.extend(family.samples)
            else:
                merged.samples.extend(sample._replace(labels={"service": service, **sample.labels})
                                      for sample in family.samples)
    return generate_latest(_Families(list(families.values())))


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None


class _Families(Collector):
    """Families already collected, for prometheus_client's formatter."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


_CURRENT: ContextVar[Exporter | None] = ContextVar("ampmq_metrics_exporter", default=None)


@contextlib.contextmanager
def exporting(exporter: Exporter | None) -> Iterator[Exporter | None]:
    """Make ``exporter`` the one that runtimes created inside the block (and in tasks started from it)
    register with; None: they register nowhere."""
    token = _CURRENT.set(exporter)
    try:
        yield exporter
    finally:
        _CURRENT.reset(token)


def service_registry(runtime: Runtime) -> CollectorRegistry:
    """A new registry for ``runtime``'s service, with its :class:`RuntimeCollector`, registered with the
    current exporter if there is one."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(runtime))
    exporter = _CURRENT.get()
    if exporter is not None:
        exporter.add(runtime.service, registry, lambda: runtime.connected)
    return registry


def counter(name: str, documentation: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    """A one-sample counter family (``name`` without ``_total``)."""
    family = CounterMetricFamily(name, documentation, labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), value)
    return family


def gauge(name: str, documentation: str, value: float) -> Metric:
    """A one-sample gauge family."""
    return GaugeMetricFamily(name, documentation, value=value)


class RuntimeCollector(Collector):
    """What every service's MQTT runtime counts (:class:`~shared.mqtt.RuntimeStats` and its inbox), read
    when scraped."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        rt = self.runtime
        stats, inbox = rt.stats, rt.inbox
        yield gauge("ampmq_mqtt_connected", "1 while connected to the broker (subscriptions acknowledged).",
                    1.0 if rt.connected else 0.0)
        yield counter("ampmq_mqtt_reconnects", "Connections to the broker after the first one.",
                      max(0, stats.connects - 1))
        yield counter("ampmq_mqtt_messages_received", "Messages handed to the routes (after the inbox).",
                      stats.received)
        yield counter("ampmq_mqtt_messages_rejected", "Messages refused: a payload that failed its model, or a "
                      "value a handler rejected.", stats.rejected)
        yield counter("ampmq_mqtt_messages_published", "Messages handed to the broker connection.", stats.published)
        yield counter("ampmq_mqtt_own_echoes", "This service's own publications read back and dropped unparsed "
                      "(no news).", rt.own_output.echoes)
        yield counter("ampmq_mqtt_publish_dropped", "Publications dropped because the broker was not connected.",
                      stats.dropped)
        yield counter("ampmq_handler_errors", "Handlers and background tasks that failed with a bug.",
                      stats.handler_errors)
        yield gauge("ampmq_inbox_waiting", "Messages received and not yet handled.", float(len(inbox)))
        yield counter("ampmq_inbox_replaced", "Waiting state messages a newer one on their topic replaced.",
                      inbox.replaced)
        yield counter("ampmq_inbox_refused", "Commands and events refused because the inbox was full.", inbox.refused)
        reports = CounterMetricFamily("ampmq_error_reports", "Error reports published, by their error code.",
                                      labels=["code"])
        for code, count in sorted(stats.error_reports.items()):
            reports.add_metric([code], count)
        yield reports


__all__ = ["Exporter", "MetricsConfig", "RuntimeCollector", "counter", "exporting", "gauge", "service_registry"]
