"""A grid meter that gives only a total, on a site with generation behind it (issue 13.5): phase A exports
25 A (solar on A), B imports 20 A, C 2 A; the meter says -690 W. No phase may be published below what it
really imports, and "0 A everywhere" is the worst answer of all."""

from __future__ import annotations

from typing import Any

from shared.probe import Probe, Received

from .conftest import TOPICS, currents, measurement, running_bridge

REAL = {"A": -25.0, "B": 20.0, "C": 2.0}
TOTAL_W = sum(REAL.values()) * 230.0  # -690 W


def total_only_meter(site_id: str, **options: Any) -> dict[str, Any]:
    return {"id": "grid", "driver": "mqtt_json", "values": [{"topic": f"home/{site_id}/grid", "unit": "W"}],
            **options}


def solar_inverter(site_id: str) -> dict[str, Any]:
    return {"id": "pv", "driver": "mqtt_json", "role": "solar",
            "values": [{"topic": f"home/{site_id}/pv", "unit": "W"}]}


def exporting(msg: Received) -> bool:
    grid = measurement(msg).grid_power
    return grid is not None and grid.value < 0


async def test_a_total_with_measured_solar_bounds_every_phase_above_what_it_imports(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    site = {"sources": [total_only_meter(site_id), solar_inverter(site_id)]}
    async with running_bridge(mqtt_url, {site_id: site}):
        await probe.publish(f"home/{site_id}/pv", "6000")
        await probe.expect(TOPICS.measurement(site_id), where=lambda m: measurement(m).solar_power is not None)
        await probe.publish(f"home/{site_id}/grid", str(TOTAL_W))
        msg = await probe.expect(TOPICS.measurement(site_id), where=lambda m: bool(currents(m)))
    got = currents(msg)
    assert set(got) == {"A", "B", "C"}
    assert got != {"A": 0.0, "B": 0.0, "C": 0.0}
    assert all(got[p] >= REAL[p] for p in REAL), got  # B's 20 A is within the bound: (6000 - 690) / 230
    assert got["B"] == round((6000 + TOTAL_W) / 230.0, 3)
    assert any("total + generation" in note for note in measurement(msg).notes)


async def test_an_export_of_unknown_generation_leaves_the_phases_unknown_and_is_reported_once(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    await probe.subscribe(TOPICS.measurement(site_id))
    await probe.subscribe(TOPICS.errors(site_id))
    async with running_bridge(mqtt_url, {site_id: {"sources": [total_only_meter(site_id, split="even")]}}):
        await probe.publish(f"home/{site_id}/grid", "2300")
        await probe.expect(TOPICS.measurement(site_id), where=lambda m: currents(m) == {"A": 3.333, "B": 3.333,
                                                                                         "C": 3.333})
        mark = probe.mark()
        for _ in range(3):
            await probe.publish(f"home/{site_id}/grid", str(TOTAL_W))
        msg = await probe.expect(TOPICS.measurement(site_id), after=mark, where=exporting)
        report = await probe.expect(TOPICS.errors(site_id), after=mark)
        await probe.publish(f"home/{site_id}/grid", "2300")  # importing again: split as configured
        await probe.expect(TOPICS.measurement(site_id), after=mark, where=lambda m: bool(currents(m)))
    assert currents(msg) == {}  # not 0 A on every phase, not -1 A each: unknown, so the allocator goes stale
    assert report.json()["error"] == "split_unknown"
    assert len(probe.on(TOPICS.errors(site_id), after=mark)) == 1
