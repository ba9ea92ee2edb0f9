"""``ampmq demo`` as a user runs it: the subcommand, its options, a short run writing both reports, and a
bad scenario refused with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli import build_parser, main

MIDDAY = Path(__file__).with_name("midday.yaml")


def test_demo_subcommand_has_the_documented_options() -> None:
    args = build_parser().parse_args(["demo"])
    assert args.scenario == "scenarios/sunny-day.yaml"
    assert args.speed is None and args.duration is None and args.report_dir == "." and not args.no_dashboard
    assert callable(args.handler)
    args = build_parser().parse_args(["demo", "--scenario", "x.yaml", "--speed", "120", "--duration", "600",
                                      "--report-dir", "out", "--no-dashboard"])
    assert (args.scenario, args.speed, args.duration, args.report_dir, args.no_dashboard) == \
        ("x.yaml", 120.0, 600.0, "out", True)


def test_a_short_demo_writes_both_reports(mqtt_url: str, site_id: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AMPMQ_MQTT_URL", mqtt_url)
    # a root of its own: the allocator serves every site under its root, and the session broker holds the
    # retained sites of every test before this one
    monkeypatch.setenv("AMPMQ_ROOT", f"r-{site_id}")
    monkeypatch.delenv("AMPMQ_CONFIG", raising=False)
    scenario = tmp_path / "midday.yaml"  # on a site of its own: the session's broker keeps retained state
    scenario.write_text(MIDDAY.read_text().replace("site: home", f"site: {site_id}"))
    code = main(["demo", "--scenario", str(scenario), "--duration", "900", "--speed", "300", "--no-dashboard",
                 "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    kpis = json.loads((tmp_path / "demo-report.json").read_text())
    assert kpis["simulated_seconds"] == pytest.approx(900.0)
    assert set(kpis["loads"]) == {"carport", "garage", "boiler"}
    assert "<svg" in (tmp_path / "demo-report.html").read_text()
    assert "trips: 0" in out and "report:" in out


def test_a_bad_scenario_is_refused_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstart: '2026-01-01T00:00:00+00:00'\ngrid: {fuse: 0}\n")
    assert main(["demo", "--scenario", str(bad), "--no-dashboard"]) == 2
    assert "grid.fuse" in capsys.readouterr().err
