"""``ampmq demo`` as a user runs it: the subcommand, its options, a short run writing both reports, Ctrl-C
writing the report so far, and a bad scenario refused with exit code 2."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import build_parser, main

MIDDAY = Path(__file__).with_name("midday.yaml")
ROOT = Path(__file__).resolve().parents[2]


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
    assert kpis["simulated_seconds"] == pytest.approx(900.0) and kpis["partial"] is False
    assert set(kpis["loads"]) == {"carport", "garage", "boiler"}
    assert "<svg" in (tmp_path / "demo-report.html").read_text()
    assert "trips: 0" in out and "report:" in out


def test_a_bad_scenario_is_refused_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstart: '2026-01-01T00:00:00+00:00'\ngrid: {fuse: 0}\n")
    assert main(["demo", "--scenario", str(bad), "--no-dashboard"]) == 2
    assert "grid.fuse" in capsys.readouterr().err


@pytest.mark.skipif(not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()),
                    reason="the demo's private broker needs mosquitto")
def test_ctrl_c_writes_the_report_so_far_and_exits_quietly(tmp_path: Path) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group (the demo and its private Mosquitto)
    once the line log shows progress. The demo stops the services, writes both reports marked partial with
    the simulated time reached, and exits 130 without "Broken pipe" or a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMQ_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "demo", "--scenario", str(MIDDAY), "--duration", "3600",
         "--speed", "300", "--no-dashboard", "--broker", "mosquitto", "--report-dir", str(tmp_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            progress = re.match(r"\d\d:\d\d\s+(\d+)%", line)
            if progress and int(progress.group(1)) > 0:  # samples recorded, well before the end
                break
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = "".join(seen) + out
    assert proc.returncode == 130, out + err
    assert "Broken pipe" not in out + err and "Traceback" not in err, out + err
    assert "partial report: stopped at" in out
    kpis = json.loads((tmp_path / "demo-report.json").read_text())
    assert kpis["partial"] is True and kpis["planned_seconds"] == 3600.0
    assert 0 < kpis["simulated_seconds"] < 3600
    assert kpis["reached"].startswith("2026-06-21T11:")
    page = (tmp_path / "demo-report.html").read_text()
    assert "Partial report" in page and f"stopped (Ctrl-C) at {kpis['reached'][11:16]}" in page and "<svg" in page
