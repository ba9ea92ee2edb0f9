"""Fixtures for the allocator service tests: a root of the test's own on the session Mosquitto, fast timers,
and builders for the messages the other services would publish."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import acl
from shared.broker import Mosquitto
from shared.config import AmpmqConfig
from shared.models import Leg, LoadKind, LoadState, LoadStatus, Phase, SiteMeasurement
from shared.models.measurement import CurrentReading
from shared.probe import Probe
from shared.topics import Topics

#: Timers short enough for a test suite: decide at most every 50 ms, at least every 0.5 s.
FAST_TIMERS: dict[str, float] = {
    "min_interval": 0.05,
    "refresh": 0.5,
    "stale_after": 30.0,
    "min_run": 0.0,
    "min_pause": 0.0,
    "grace": 0.0,
    "setpoint_lifetime": 3.0,  # renewed every second (a third of it)
    "ramp_step": 100.0,
    "surplus_smoothing": 1.0,
    "surplus_dead_band": 0.0,
}


@pytest.fixture
def topics(site_id: str) -> Topics:
    """A root of the test's own, so the allocator serves only this test's sites."""
    return Topics(f"t-{site_id}")


def discovery_prefix(topics: Topics) -> str:
    """The Home Assistant discovery prefix of a test's allocator."""
    return f"ha-{topics.root}"


@pytest.fixture
def make_config(mqtt_url: str, topics: Topics) -> Callable[..., AmpmqConfig]:
    def make(sites: dict[str, dict[str, Any]] | None = None, loads: dict[str, dict[str, Any]] | None = None,
             settle: float = 0.5, **section: Any) -> AmpmqConfig:
        """The allocator serves the ``sites`` given (only configured sites are served); ``section`` holds
        further fields of its config section."""
        # Home Assistant discovery under a prefix of the test's own: the session broker keeps every earlier
        # test's retained configs, and an allocator reads its prefix's configs when it starts
        section.setdefault("discovery_prefix", discovery_prefix(topics))
        return AmpmqConfig(mqtt_url=mqtt_url, root=topics.root,
                           allocator={"settle": settle, "sites": sites or {}, "loads": loads or {}, **section})

    return make


@pytest.fixture
async def watch(probe: Probe, topics: Topics) -> AsyncIterator[Probe]:
    """The probe, subscribed to everything under the test's root."""
    await probe.subscribe(topics.all())
    yield probe


def now() -> datetime:
    return datetime.now(UTC)


def measurement(site: str, amps: float | dict[Phase, float], at: datetime | None = None) -> SiteMeasurement:
    """A grid reading, import positive, the same on every phase unless given per phase."""
    at = at or now()
    per_phase = amps if isinstance(amps, dict) else {p: amps for p in Phase}
    return SiteMeasurement(site=site, ts=at, grid_current={
        p: CurrentReading(ts=at, value=float(v)) for p, v in per_phase.items()})


def evse(site: str, load: str, *, draw: float = 0.0, min_current: float = 6.0, max_current: float = 16.0,
         one_phase: bool = False, status: LoadStatus = LoadStatus.ACTIVE) -> LoadState:
    """A charger connector drawing ``draw`` A per phase in use."""
    legs = [Leg.L1] if one_phase else [Leg.L1, Leg.L2, Leg.L3]
    state = LoadState(site=site, load=load, kind=LoadKind.EVSE, phases_in_use=legs, min_current=min_current,
                      max_current=max_current, status=status)
    return state.model_copy(update={"draw": {p: draw for p in state.site_phases()}})


def behind_generated_acl(own_mosquitto: type[Mosquitto], site: str) -> tuple[Mosquitto, AmpmqConfig]:
    """A broker of the test's own with a user per service and the ACL generated from a one-site config (a
    Shelly grid meter, a plain MQTT switch as the load); the config connects as the allocator."""
    users = {name: f"pw-{name}" for name in ("allocator", "meter-bridge", "load-adapters", acl.OPERATOR)}
    config = AmpmqConfig(allocator={"settle": 0.2, "sites": {site: {"timers": FAST_TIMERS}}},
                         meter_bridge={"sites": {site: {"sources": [{"id": "grid", "driver": "shelly",
                                                                      "prefix": "meter"}]}}},
                         load_adapters={"loads": [{"type": "mqtt_switch", "site": site, "id": "car",
                                                   "command_topic": "car/set"}]})
    broker = own_mosquitto(users=users, acl=acl.render(config).splitlines()).start()  # the ACL of this config
    return broker, config.model_copy(update={"mqtt_url": broker.url_for("allocator")})

