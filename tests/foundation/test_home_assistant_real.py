"""Discovery checked by Home Assistant itself, not by a digest of it: every config ampmq announces goes through
the MQTT platform's own ``DISCOVERY_SCHEMA``, and every template is rendered by HA's MQTT template classes in
a running HA core, with the payloads ampmq publishes (fresh, and with values missing); HA must render each one
as plain Jinja does here (the other discovery tests judge those renderings).

Home Assistant 2024.3.3 (the last release for Python 3.11) runs from its own virtualenv, ``.venv-ha``, which
``make test`` builds: HA pins its own versions of libraries ampmq uses, so the check runs there as a separate
process (tests/foundation/home_assistant/check_discovery.py) on the cases written here.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest

from shared.models import (
    ErrorReport,
    GridLimitState,
    LoadKind,
    LoadPlan,
    LoadSettings,
    LoadState,
    Mode,
    Phase,
    Reason,
    SessionSummary,
    Setpoint,
    SiteDecision,
    SiteMeasurement,
    SiteSettings,
)
from shared.models.measurement import CurrentReading, EnergyReading, PercentReading, PowerReading, VoltageReading
from shared.topics import Topics

from .test_discovery import every_entity, render, strict

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).parent / "home_assistant" / "check_discovery.py"
#: Where ``make test`` puts Home Assistant's virtualenv; AMPMQ_HA_PYTHON names another interpreter that has it.
HA_PYTHON = Path(os.environ.get("AMPMQ_HA_PYTHON", ROOT / ".venv-ha" / "bin" / "python"))
AT = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
PHASES = (Phase.A, Phase.B, Phase.C)


def _by_leaf() -> dict[str, list[str]]:
    """What ampmq publishes on each kind of state topic: a full payload, and payloads with values missing."""
    full_measurement = SiteMeasurement(
        site="home", grid_current={p: CurrentReading(ts=AT, value=12.3456 + n) for n, p in enumerate(PHASES)},
        voltage={p: VoltageReading(ts=AT, value=231.4) for p in PHASES}, grid_power=PowerReading(ts=AT, value=-812.5),
        solar_power=PowerReading(ts=AT, value=3120.4), battery_soc=PercentReading(ts=AT, value=57.0),
        battery_power=PowerReading(ts=AT, value=-1500.0), grid_import_energy=EnergyReading(ts=AT, value=2126372.0),
        grid_export_energy=EnergyReading(ts=AT, value=30000.4), solar_energy=EnergyReading(ts=AT, value=157185.6))
    evse = LoadState(site="home", load="ev", kind=LoadKind.EVSE, min_current=6.0, max_current=16.0, soc=62.4,
                     draw={p: 15.9 for p in PHASES}, power=10972.0, energy=912345.0, details={
                         "ocpp_status": "Charging", "session_energy_wh": 7421.0,
                         "session_started": "2026-12-06T17:00:00+00:00", "session_seconds": 5430})
    return {
        "measurement": [full_measurement.model_dump_json(), SiteMeasurement(site="home").model_dump_json()],
        "decision": [SiteDecision(site="home", headroom={p: 16.000173913043476 for p in PHASES},
                                  limited={"ev": "fuse_limit"}).model_dump_json(),
                     SiteDecision(site="home", stale=True).model_dump_json()],
        "settings": [SiteSettings(site="home").model_dump_json(),
                     LoadSettings(site="home", load="ev", mode=Mode.SOLAR_ONLY).model_dump_json()],
        "grid-limit": [GridLimitState(site="home", in_force=True, controllable_cap_w=4200.0,
                                      why="set by steuerbox").model_dump_json(),
                       GridLimitState(site="home").model_dump_json()],
        "errors": [ErrorReport(service="allocator", topic=Topics().measurement("home"), error="stale",
                               message="the grid meter is 31 s old").model_dump_json()],
        "state": [evse.model_dump_json(),
                  LoadState(site="home", load="x", kind=LoadKind.ONOFF, rated_power=2000.0).model_dump_json()],
        "setpoint": [Setpoint(site="home", load="ev", current=10.0, phases=list(PHASES), on=True, mode=Mode.STANDARD,
                              reason=Reason.FUSE_LIMIT, valid_until=AT).model_dump_json()],
        "plan": [LoadPlan(site="home", load="ev", target_soc=80.0, capacity_wh=60_000.0,
                          deadline=datetime(2026, 12, 7, 6, 0, tzinfo=UTC),
                          expected_finish=datetime(2026, 12, 7, 3, 20, tzinfo=UTC), expected_cost=4.514
                          ).model_dump_json()],
        "last": [SessionSummary(site="home", load="ev", ended=datetime(2026, 12, 6, 18, 0, tzinfo=UTC),
                                energy_wh=14_230.0, solar_share=63.4, id_tag="RFID-42").model_dump_json()],
    }


PAYLOADS = _by_leaf()
#: What any topic may hold: a cleared retained message, and something that is not JSON.
ANY = ["", "not json"]


def _value_cases(topic: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Each state, attributes and availability template of ``config`` with each payload of its topic that
    plain Jinja renders (one it cannot is no payload of that topic)."""
    templates = [(config.get("state_topic"), config.get("value_template"), "value_template"),
                 (config.get("json_attributes_topic"), config.get("json_attributes_template"), "attributes")]
    templates += [(a["topic"], a.get("value_template"), f"availability {a['topic']}")
                  for a in config.get("availability", [])]
    cases = []
    for state_topic, template, what in templates:
        if not state_topic or not template:
            continue
        leaf = str(state_topic).rsplit("/", 1)[-1]
        for payload in [*PAYLOADS.get(leaf, ["online", "offline"]), *ANY]:
            with contextlib.suppress(jinja2.TemplateError, TypeError, ValueError):
                cases.append({"kind": "value", "where": f"{topic} {what} on {payload[:40]!r}", "template": template,
                              "payload": payload, "expected": strict(template, payload).strip()})
    return cases


def _command_cases(topic: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The command template with what HA's entity passes it: each option of a select, a number's bounds."""
    template = config.get("command_template")
    if not template:
        return []
    values: list[Any] = list(config.get("options", []))
    if "min" in config:
        values += [float(config["min"]), float(config["max"])]
    return [{"kind": "command", "where": f"{topic} command {value!r}", "template": template, "value": value,
             "expected": render(template, value=value)} for value in values]


def test_home_assistant_takes_every_config_and_renders_every_template_as_jinja_does(tmp_path: Path) -> None:
    if not HA_PYTHON.exists():
        pytest.fail(f"{HA_PYTHON} is missing: `make test` builds Home Assistant's virtualenv (.venv-ha) first "
                    "(or set AMPMQ_HA_PYTHON to a Python with homeassistant==2024.3.3)")
    entities = every_entity()
    renders = []
    for topic, config in entities:
        values, commands = _value_cases(topic, config), _command_cases(topic, config)
        # every state template meets a payload of its own topic and the two any topic may hold; every command
        # template each value HA's entity can pass it
        if "value_template" in config:
            assert sum(1 for case in values if " value_template on " in case["where"]) >= 1 + len(ANY), topic
        assert bool(commands) == ("command_template" in config), topic
        renders += [*values, *commands]
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"entities": entities, "renders": renders}))
    done = subprocess.run([str(HA_PYTHON), str(CHECK), str(cases)], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["home_assistant"] == "2024.3.3"
    assert report["problems"] == []
    assert (report["configs"], report["renders"]) == (len(entities), len(renders))
