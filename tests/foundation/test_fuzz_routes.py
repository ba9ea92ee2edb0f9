"""Every route of every service, fuzzed: whatever arrives on a topic a service subscribes to is judged as
input (applied, or refused with a report) and never trips a handler.

Each service runs on its own real MQTT connection to the test broker, configured with one device of every
kind it drives. Hypothesis draws a subscribed filter, fills its wildcards with the ids the services know
(and others), and a payload: random bytes, random JSON, a valid-looking object with hostile values, or a
known parser trap (deep nesting, huge numbers, NaN). Each goes through the runtime's own dispatch — the
parse, validate and handle path a message from the broker takes — and the service must count no handler
error. The number of inputs tried is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.allocator.service import AllocatorService
from services.load_adapters.service import LoadAdapters, LoadAdaptersConfig
from services.meter_bridge.bridge import MeterBridge
from services.meter_bridge.config import MeterBridgeConfig
from services.ocpp_gateway.config import GatewayConfig
from services.ocpp_gateway.gateway import Gateway
from shared.clock import SYSTEM_CLOCK
from shared.config import AmpmqConfig
from shared.mqtt import Runtime
from shared.topics import Topics

SITE = "fz"
ROOT = "t-fuzz"
TOPICS = Topics(ROOT)
EXAMPLES = 1500

_LOADS: list[dict[str, Any]] = [
    {"type": "ocpp_charger", "site": SITE, "id": "car", "charger": "cp-a"},
    {"type": "shelly_plug", "site": SITE, "id": "plug", "prefix": "fz-shellyplug"},
    {"type": "tasmota_plug", "site": SITE, "id": "heater", "topic": "fz-tasmota"},
    {"type": "mqtt_switch", "site": SITE, "id": "pump", "command_topic": "fz-pump/set", "state_topic": "fz-pump/state",
     "state_field": "state", "power": {"topic": "fz-pump/state", "field": "power"}},
    {"type": "boiler", "site": SITE, "id": "tank", "control": "continuous", "max_power": 3000.0, "min_power": 500.0,
     "temperature": {"topic": "fz-boiler/temp"},
     "power_command": {"topic": "fz-boiler/set", "template": '{"value": {value}}',
                       "state": {"topic": "fz-boiler/state", "field": "value"}}},
    {"type": "heat_pump", "site": SITE, "id": "hp", "control": "thermostat", "rated_power": 2500.0,
     "thermostat": {"target": {"topic": "fz-hp/set", "state": {"topic": "fz-hp/state", "field": "value"}},
                    "base_temperature": 21.0, "boost_offset": 3.0, "comfort_min": 19.0, "comfort_max": 22.5}},
]
_SOURCES: list[dict[str, Any]] = [
    {"id": "grid", "driver": "shelly", "prefix": "fz-pro3em"},
    {"id": "old", "driver": "shelly", "prefix": "shellies/fz-3em", "generation": 1, "role": "solar"},
    {"id": "tas", "driver": "tasmota", "device": "fz-tasmeter", "role": "solar"},
]

#: What a wildcard may stand for: the ids the services know, fields they take, and strangers.
WORDS = [SITE, "car", "plug", "heater", "pump", "tank", "hp", "cp-a", "SetChargingProfile", "DataTransfer",
         "mode", "priority", "max_current", "fuse_limit", "timers", "transaction", "em:0", "em1:0", "0", "1",
         "power", "current", "SENSOR", "STATE", "RESULT", "POWER", "events", "rpc", "other", "x" * 70, "UPPER"]

_TRAPS = [b"[" * 100_000, b"{" * 50_000, b"9" * 400, b'{"a": ' + b"9" * 5000 + b"}", b"NaN", b"-Infinity", b"1e999",
          b"", b"null", b"\xff\xfe\x00", b'{"ENERGY": {"Power": 1e308, "Current": -1e308}}',
          b'{"value": ' + b"[" * 1000 + b"]" * 1000 + b"}"]

_scalars = st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20) | st.sampled_from(WORDS)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) |
                     st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=8), inner, max_size=5), max_leaves=20)
_keys = st.sampled_from(["current", "draw", "site", "load", "ts", "status", "value", "mode", "request_id", "payload",
                         "a_current", "a_act_power", "total_act_power", "ENERGY", "POWER", "params", "method",
                         "grid_current", "phases_in_use", "min_current", "max_current", "kind", "v", "tC"])
_objects = st.dictionaries(_keys, _json, max_size=8)
PAYLOADS = st.one_of(
    st.binary(max_size=64),
    _json.map(lambda v: json.dumps(v).encode()),
    _objects.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(_TRAPS),
    st.sampled_from(_TRAPS),
)


class Suite:
    """The four services on real MQTT connections, run by an event loop in a thread of its own (so that
    hypothesis, which is synchronous, can hand each input to it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runtimes: list[Runtime] = []
        self.tasks: list[asyncio.Task[Any]] = []

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        config = AmpmqConfig(mqtt_url=self.url, root=ROOT, allocator={"settle": 0.1, "sites": {SITE: {}}})
        allocator = AllocatorService(config, SYSTEM_CLOCK)
        self.runtimes.append(allocator.runtime)
        self.tasks.append(asyncio.get_running_loop().create_task(allocator.run()))
        adapters_rt = Runtime("load-adapters", self.url, TOPICS)
        adapters = LoadAdapters(LoadAdaptersConfig.model_validate({"loads": _LOADS}), adapters_rt, SYSTEM_CLOCK)
        bridge_rt = Runtime("meter-bridge", self.url, TOPICS)
        MeterBridge(MeterBridgeConfig.model_validate({"sites": {SITE: {"sources": _SOURCES}}}), bridge_rt,
                    SYSTEM_CLOCK).install()
        gateway_rt = Runtime("ocpp-gateway", self.url, TOPICS)
        Gateway(GatewayConfig.model_validate({"port": 0, "chargers": {"CP_A": {"site": SITE, "auth": "none"}}}),
                gateway_rt, SYSTEM_CLOCK)
        for runtime in (adapters_rt, bridge_rt, gateway_rt):
            self.runtimes.append(runtime)
            self.tasks.append(asyncio.get_running_loop().create_task(runtime.run()))
        for runtime in self.runtimes:
            await runtime.wait_connected(10)
        self._adapters = adapters

    async def _stop(self) -> None:
        await self._adapters.stop()
        for runtime in self.runtimes:
            await runtime.close()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def __enter__(self) -> Suite:
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def suite(mqtt_url: str) -> Iterator[Suite]:
    with Suite(mqtt_url) as running:
        yield running


def _topic(topic_filter: str, draw: Any) -> str:
    """A concrete topic for ``topic_filter``, each wildcard level drawn on its own."""
    levels = []
    for level in topic_filter.split("/"):
        if level == "+":
            levels.append(draw(st.sampled_from(WORDS)))
        elif level == "#":
            levels.append("/".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=2))))
        else:
            levels.append(level)
    return "/".join(levels)


def test_every_route_judges_whatever_arrives(suite: Suite) -> None:
    routes = [(rt, f) for rt in suite.runtimes for f in sorted(rt.filters)]
    assert len(routes) >= 20, routes  # every service's input topics are in the draw
    tried = {rt.service: 0 for rt in suite.runtimes}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(routes), data=st.data(), payload=PAYLOADS, retain=st.booleans())
    def one_input(route: tuple[Runtime, str], data: st.DataObject, payload: bytes, retain: bool) -> None:
        runtime, topic_filter = route
        before = runtime.stats.handler_errors
        suite.run(runtime.dispatch(_topic(topic_filter, data.draw), payload, retain))
        tried[runtime.service] += 1
        assert runtime.stats.handler_errors == before, f"{runtime.service}: {topic_filter} tripped on {payload[:80]!r}"

    one_input()
    print(f"fuzzed {sum(tried.values())} inputs over {len(routes)} routes: {tried}")
    assert all(count > 0 for count in tried.values()), tried
    assert sum(rt.stats.rejected for rt in suite.runtimes) > 0  # the draw does reach the parsers' refusals
