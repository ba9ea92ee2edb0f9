"""The pure halves of what the allocator trusts: installation limits and judging timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.allocator.freshness import judge_measurement, judge_state, only_renewed
from services.allocator.limits import breaches, clamped
from shared.models import Circuit, LoadStatus, Mode, Phase, PowerReading, SiteSettings

from .conftest import evse, measurement

T = datetime(2026, 6, 1, 12, tzinfo=UTC)
CONFIGURED = SiteSettings(site="home", fuse_limit=25.0, margin=1.0, max_import_power=11000.0,
                          circuits=[Circuit(id="garage", limit=16.0)])


def test_safer_settings_pass_and_each_raised_limit_is_named() -> None:
    safer = CONFIGURED.model_copy(update={"fuse_limit": 20.0, "margin": 3.0, "max_import_power": 5000.0,
                                          "circuits": [Circuit(id="garage", limit=10.0), Circuit(id="x", limit=6.0)]})
    assert breaches(safer, CONFIGURED) == []
    raised = CONFIGURED.model_copy(update={"fuse_limit": 1000.0, "margin": 0.0, "max_import_power": None,
                                           "circuits": [Circuit(id="garage", limit=32.0)], "phases": [Phase.A]})
    found = breaches(raised, CONFIGURED)
    assert len(found) == 5
    assert "configured fuse limit 25 A" in found[0] and "configured margin 1 A" in found[1]


def test_clamped_settings_are_within_the_installation_and_keep_the_rest() -> None:
    forged = CONFIGURED.model_copy(update={"fuse_limit": 1000.0, "margin": 0.0, "max_import_power": None,
                                           "circuits": [], "phases": [Phase.A], "mode": Mode.SOLAR_ONLY})
    held = clamped(forged, CONFIGURED)
    assert breaches(held, CONFIGURED) == []
    assert (held.fuse_limit, held.margin, held.max_import_power) == (25.0, 1.0, 11000.0)
    assert [c.limit for c in held.circuits] == [16.0] and set(held.phases) == set(Phase)
    assert held.mode is Mode.SOLAR_ONLY


def test_a_reading_counts_from_its_arrival_and_one_from_beyond_the_tolerance_is_dropped() -> None:
    m = measurement("home", 5.0, at=T + timedelta(seconds=3)).model_copy(update={
        "solar_power": PowerReading(ts=T + timedelta(hours=1), value=3000.0)})
    m.grid_current[Phase.B] = m.grid_current[Phase.B].model_copy(update={"ts": T + timedelta(minutes=5)})
    judged = judge_measurement(m, T, tolerance=5.0)
    assert judged.measurement.grid_current[Phase.A].ts == T  # 3 s ahead: within the tolerance, counted from now
    assert Phase.B not in judged.measurement.grid_current and judged.measurement.solar_power is None
    assert len(judged.future) == 2 and "300 s ahead" in judged.future[0]
    old = measurement("home", 5.0, at=T - timedelta(seconds=30))
    assert judge_measurement(old, T, tolerance=5.0).measurement == old  # an older stamp is kept as it is
    # a measurement stamped in time may still carry one reading from the future: that one is left out
    mixed = old.model_copy(update={"solar_power": PowerReading(ts=T + timedelta(hours=1), value=3000.0)})
    judged = judge_measurement(mixed, T, tolerance=5.0)
    assert judged.measurement.solar_power is None and judged.measurement.grid_current == old.grid_current
    assert len(judged.future) == 1 and "solar_power" in judged.future[0]


def test_a_state_from_the_future_is_not_trusted() -> None:
    state, why = judge_state(evse("home", "car").model_copy(update={"ts": T + timedelta(hours=1)}), T, 5.0)
    assert state.ts == T and why is not None and "3600 s ahead" in why
    state, why = judge_state(evse("home", "car").model_copy(update={"ts": T + timedelta(seconds=2)}), T, 5.0)
    assert state.ts == T and why is None


def test_a_state_that_only_renews_an_unchanged_fresh_one_asks_for_no_decision() -> None:
    """An adapter renews its state every ``state_interval``: a decision follows only news, or a state that
    rescues an ageing one (older than half ``load_stale_after``), or the first one."""
    before = evse("home", "car", draw=16.0).model_copy(update={"ts": T - timedelta(seconds=10)})
    renewal = before.model_copy(update={"ts": T})
    assert only_renewed(before, renewal, T, stale_after=30.0)
    assert not only_renewed(None, renewal, T, stale_after=30.0)
    assert not only_renewed(before, renewal.model_copy(update={"draw": {Phase.A: 9.0}}), T, stale_after=30.0)
    assert not only_renewed(before, renewal.model_copy(update={"status": LoadStatus.IDLE}), T, stale_after=30.0)
    ageing = before.model_copy(update={"ts": T - timedelta(seconds=16)})
    assert not only_renewed(ageing, renewal, T, stale_after=30.0)
