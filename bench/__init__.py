"""Benchmarks: each module exposes ``run(quick: bool) -> dict`` of figures; ``python -m bench`` runs them all."""
