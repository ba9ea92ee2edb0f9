"""The benchmarks' floors are measured, not assumed: the relay chain really passes messages through."""

from __future__ import annotations

from bench.floors import relay_path


async def test_a_chain_of_relay_processes_passes_every_message_to_the_websocket(mqtt_url: str) -> None:
    figures = await relay_path(mqtt_url, hops=2, gap=0.0, samples=5)
    assert figures["n"] == 5
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
