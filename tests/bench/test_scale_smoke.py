"""The scale benchmark's partitioned setup works: two partitions of real service processes on the tests'
broker, each with its own gateway port and harness process; every overload's cut arrives at the charger,
no service process publishes anything for (or sends a frame to) another partition's site or charger, and
every service is online with both its instances (shared/availability.py)."""

from __future__ import annotations

from bench.scale import Step, run_step


async def test_two_partitions_cut_every_overload_and_serve_only_their_own_sites(mqtt_url: str) -> None:
    step = Step(chargers=8, partitions=2, meter_interval=1.0, trials=6, patience=3.0)
    result = await run_step(step, broker_url=mqtt_url, check_ownership=True, settle=0.0)
    assert "wrong" not in result, result.get("wrong")
    assert result["overload_to_cut"]["n"] == step.trials
    assert result["strays"] == 0
    assert set(result["instances_online"].values()) == {2}, "each service: both instances online, and the service"
    assert set(result["cpu_s_per_s"]) == {"bridge", "allocator", "adapters", "gateway", "harness"}
