"""Writes ``docs/mqtt-api.md`` from the contract itself: every topic with its model, direction, retain
flag and an example payload, and every model's fields. ``python -m shared.apidoc`` rewrites the file;
a test fails when a model or topic changes and the doc does not."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from . import models as m
from .topics import Topics

T = Topics()
TS = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)
SITE, LOAD, CP, SOURCE = "home", "garage-ev", "cp-1", "grid"
DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "mqtt-api.md"


@dataclass(frozen=True)
class TopicDoc:
    topic: str
    model: type[BaseModel] | None
    publisher: str
    retained: bool
    what: str
    example: BaseModel | str


def _reading(value: float, cls: type[m.Reading] = m.CurrentReading) -> Any:
    return cls.model_validate({"value": value, "ts": TS, "source": SOURCE})


EXAMPLE_LOAD = m.LoadState(ts=TS, site=SITE, load=LOAD, kind=m.LoadKind.EVSE, name="Garage", min_current=6.0,
                           max_current=16.0, draw={m.Phase.A: 10.0, m.Phase.B: 10.0, m.Phase.C: 10.0},
                           power=6900.0, status=m.LoadStatus.ACTIVE, details={"ocpp_status": "Charging"})

EXAMPLE_SESSION = m.SessionSummary(ts=TS, site=SITE, load=LOAD, charger=CP, connector=1, transaction_id="17",
                                   id_tag="TAG1", started=TS - timedelta(hours=3), ended=TS, duration=10800.0,
                                   energy_wh=14200.0, solar_share=63.4, solar_energy_wh=9002.8, peak_current=16.0,
                                   reason="EVDisconnected")

ENTRIES: list[TopicDoc] = [
    TopicDoc(T.service_availability("allocator"), None, "every service (Last Will)", True,
             "Service availability: `online` while any instance of the service runs; every instance's Last Will "
             "is `offline`, and a running instance answers a false `offline` with `online` at once "
             "(`shared/availability.py`).", "online"),
    TopicDoc(T.service_instance("allocator", "ampmq-allocator-host-1-1"), None, "every service", True,
             "One running instance of a service: `online` while it runs, cleared (empty) when it stops cleanly; "
             "a service stopping cleanly says the service `offline` only when no other instance answers the roll "
             "call.", "online"),
    TopicDoc(T.service_roll_call("allocator"), None, "every service", False,
             "A roll call (the caller's instance id): every running instance of the service says its instance "
             "topic again; entries nobody answers for are cleared.", "ampmq-allocator-host-1-1"),
    TopicDoc(T.measurement(SITE), m.SiteMeasurement, "meter-bridge", True,
             "The site's normalized measurement: grid current per phase (import +), solar, battery.",
             m.SiteMeasurement(ts=TS, site=SITE, grid_current={p: _reading(v) for p, v in
                                                                zip(m.Phase, (12.1, 8.4, 9.9), strict=True)},
                               solar_power=_reading(3200.0, m.PowerReading),
                               battery_soc=_reading(64.0, m.PercentReading))),
    TopicDoc(T.meter_availability(SITE, SOURCE), None, "meter-bridge", True,
             "Availability of one meter source.", "online"),
    TopicDoc(T.site_settings(SITE), m.SiteSettings, "allocator", True,
             "The site's settings as applied.", m.SiteSettings(ts=TS, site=SITE)),
    TopicDoc(T.site_settings_set(SITE), m.SiteSettingsSet, "anyone → allocator", False,
             "Change site settings: only the fields given.",
             m.SiteSettingsSet(mode=m.Mode.SOLAR_ONLY, transaction="42")),
    TopicDoc(T.decision(SITE), m.SiteDecision, "allocator", True,
             "Summary of the last decision: pools, headroom, limited loads, memory.",
             m.SiteDecision(ts=TS, site=SITE, headroom={m.Phase.A: 3.0, m.Phase.B: 6.6, m.Phase.C: 5.1})),
    TopicDoc(T.calibration(SITE), m.Calibration, "allocator", True,
             "Phase mapping per load and polarity per grid phase, detected from load steps (warns, never overrides"
             " unless the load's `auto_phase_map` is on).",
             m.Calibration(ts=TS, site=SITE, events=7, ignored=2,
                           loads={LOAD: m.LoadCalibration(
                               configured={m.Leg.L1: m.Phase.A, m.Leg.L2: m.Phase.B, m.Leg.L3: m.Phase.C},
                               legs={m.Leg.L1: m.Phase.C}, votes={m.Leg.L1: {m.Phase.C: 4}}, differs=True,
                               recent={m.Leg.L1: [m.Phase.C] * 4})},
                           phases={m.Phase.C: m.PhasePolarity(polarity=m.Polarity.NORMAL, normal=5,
                                                              recent=[m.Polarity.NORMAL] * 5)},
                           notes=["load garage-ev: L1 steps the grid on phase C, configured A: set its legs {L1: C}"])),
    TopicDoc(T.grid_limit_set(SITE), m.GridLimitSet, "grid operator's control box, EMS → allocator", False,
             "The grid operator's signal: the whole limit in force now (replaces the last; no limits: none). Each "
             "one is also a heartbeat of the source (see docs/allocator.md, \"Grid-operator limits\").",
             m.GridLimitSet(controllable_cap_w=4200.0, valid_until=TS + timedelta(hours=2), source="steuerbox")),
    TopicDoc(T.grid_limit(SITE), m.GridLimitState, "allocator", True,
             "The grid-operator limit the allocator applies: where it comes from, until when, which loads it holds.",
             m.GridLimitState(ts=TS, site=SITE, in_force=True, origin=m.GridLimitOrigin.SIGNAL, source="steuerbox",
                              controllable_cap_w=4200.0, valid_until=TS + timedelta(hours=2), heard=TS,
                              binding=[LOAD], why="set by steuerbox")),
    TopicDoc(T.errors(SITE), m.ErrorReport, "any service", False,
             "A payload or event a service rejected, and why; it echoes the request's ``transaction``, if any.",
             m.ErrorReport(ts=TS, service="allocator", topic=T.load_settings_set(SITE, LOAD), error="validation",
                           message="priority: Input should be a valid integer",
                           payload='{"priority": "2", "transaction": "42"}', transaction="42")),
    TopicDoc(T.prices(SITE), m.PriceForecast, "a tariff bridge (Tibber, Nordpool, aWATTar via HA or Node-RED)",
             True, "Import price per slot, for departure plans ([plans.md](plans.md)).",
             m.PriceForecast(ts=TS, site=SITE, slots=[
                 m.PriceSlot(start=TS + timedelta(hours=h), end=TS + timedelta(hours=h + 1), price=p)
                 for h, p in ((10, 0.31), (11, 0.12), (12, 0.09))])),
    TopicDoc(T.pv_forecast(SITE), m.PvForecast, "a solar forecast bridge (optional)", True,
             "Expected solar production per slot (mean W); counted free in departure plans.",
             m.PvForecast(ts=TS, site=SITE, slots=[
                 m.PvSlot(start=TS + timedelta(hours=h), end=TS + timedelta(hours=h + 1), power=p)
                 for h, p in ((10, 2500.0), (11, 1800.0))])),
    TopicDoc(T.load_state(SITE, LOAD), m.LoadState, "load-adapters", True,
             "What a controllable load is and does now.", EXAMPLE_LOAD),
    TopicDoc(T.load_availability(SITE, LOAD), None, "load-adapters", True, "Availability of one load.", "online"),
    TopicDoc(T.setpoint(SITE, LOAD), m.Setpoint, "allocator", True,
             "What the load may draw until `valid_until`, and why.",
             m.Setpoint(ts=TS, site=SITE, load=LOAD, current=10.0, phases=list(m.Phase), mode=m.Mode.STANDARD,
                        reason=m.Reason.FUSE_LIMIT, message="limited to 10 A by the 25 A fuse on phase A",
                        valid_until=TS + timedelta(seconds=60), active_since=TS)),
    TopicDoc(T.load_settings(SITE, LOAD), m.LoadSettings, "allocator", True,
             "A load's mode, priority and limits as applied.",
             m.LoadSettings(ts=TS, site=SITE, load=LOAD, mode=m.Mode.SOLAR_PRIORITY, priority=1)),
    TopicDoc(T.load_settings_set(SITE, LOAD), m.LoadSettingsSet, "anyone → allocator", False,
             "Change one load's settings: only the fields given.", m.LoadSettingsSet(mode=m.Mode.EXCESS)),
    TopicDoc(T.plan_set(SITE, LOAD), m.PlanSet, "anyone → allocator", False,
             "Set the load's departure plan: a target SOC (with the battery's capacity) or energy, and a deadline;"
             " `null` clears it.",
             m.PlanSet(target_soc=80.0, capacity_wh=60000.0, deadline=TS + timedelta(hours=19), transaction="42")),
    TopicDoc(T.plan(SITE, LOAD), m.LoadPlan, "allocator", True,
             "The load's departure plan: the slots it charges in, the expected cost and finish, whether the target"
             " can be reached.",
             m.LoadPlan(ts=TS, site=SITE, load=LOAD, target_soc=80.0, capacity_wh=60000.0,
                        deadline=TS + timedelta(hours=19), energy_needed_wh=13800.0, current=10.0,
                        house_estimate=14.0, slots=[m.PlannedSlot(start=TS + timedelta(hours=14),
                                                                  end=TS + timedelta(hours=16), current=10.0,
                                                                  energy_wh=13800.0, price=0.09)],
                        expected_cost=1.242, currency="EUR", expected_finish=TS + timedelta(hours=16),
                        message="13.8 kWh in 1 slot(s) at 10.0 A, about 1.24 EUR, done by 04:00 UTC")),
    TopicDoc(T.session_event(SITE, LOAD), m.SessionSummary, "load-adapters", False,
             "A charging session of the load ended (its transaction ended, or the car was unplugged).",
             EXAMPLE_SESSION),
    TopicDoc(T.session_last(SITE, LOAD), m.SessionSummary, "load-adapters", True,
             "The load's last finished charging session, until the next one ends.",
             EXAMPLE_SESSION),
    TopicDoc(T.charger_availability(SITE, CP), None, "ocpp-gateway", True,
             "Whether the charger's websocket is connected.", "online"),
    TopicDoc(T.charger_boot(SITE, CP), m.ChargerBoot, "ocpp-gateway", True, "BootNotification.",
             m.ChargerBoot(ts=TS, site=SITE, charger=CP, ocpp_id="CP-1", ocpp_version=m.OcppVersion.V16,
                           vendor="ACME", model="Wallbox 22")),
    TopicDoc(T.charger_heartbeat(SITE, CP), m.ChargerHeartbeat, "ocpp-gateway", True, "Last Heartbeat.",
             m.ChargerHeartbeat(ts=TS, site=SITE, charger=CP)),
    TopicDoc(T.connector_status(SITE, CP, 1), m.ConnectorStatus, "ocpp-gateway", True,
             "Status per connector, in the charger's own words.",
             m.ConnectorStatus(ts=TS, site=SITE, charger=CP, connector=1, status="Charging")),
    TopicDoc(T.connector_meter(SITE, CP, 1), m.ConnectorMeter, "ocpp-gateway", True,
             "Latest meter values per connector.",
             m.ConnectorMeter(ts=TS, site=SITE, charger=CP, connector=1,
                              samples=[m.SampledValue(measurand="Current.Import", value=10.0, unit="A", phase="L1")],
                              current_import={m.Leg.L1: 10.0})),
    TopicDoc(T.connector_transaction(SITE, CP, 1), m.TransactionState, "ocpp-gateway", True,
             "The connector's transaction.",
             m.TransactionState(ts=TS, site=SITE, charger=CP, connector=1, transaction_id="17", state="started",
                                id_tag="TAG1", meter_start_wh=1200.0)),
    TopicDoc(T.charger_event(SITE, CP, "FirmwareStatusNotification"), m.ChargerEvent, "ocpp-gateway", False,
             "Things a charger says that are not state.",
             m.ChargerEvent(ts=TS, site=SITE, charger=CP, name="FirmwareStatusNotification",
                            data={"status": "Installed"})),
    TopicDoc(T.charger_command(SITE, CP, "SetChargingProfile"), m.OcppCommand, "load-adapters → ocpp-gateway",
             False, "An OCPP call for the charger, in its version's JSON shape.",
             m.OcppCommand(request_id="r-1", payload={"connectorId": 1, "csChargingProfiles": {}})),
    TopicDoc(T.charger_result(SITE, CP, "SetChargingProfile"), m.OcppResult, "ocpp-gateway", False,
             "The charger's answer to a command, or the error.",
             m.OcppResult(ts=TS, site=SITE, charger=CP, action="SetChargingProfile", request_id="r-1", ok=True,
                          response={"status": "Accepted"})),
]


def _pattern(topic: str) -> str:
    parts = topic.split("/")
    names = {SITE: "<site>", LOAD: "<load>", CP: "<charger>", SOURCE: "<source>", "allocator": "<service>",
             "SetChargingProfile": "<action>", "FirmwareStatusNotification": "<name>"}
    return "/".join("<connector>" if p == "1" and i > 0 and parts[i - 1] == "connector" else names.get(p, p)
                    for i, p in enumerate(parts))


def _type_of(spec: dict[str, Any] | bool) -> str:
    if isinstance(spec, bool):
        return "any"
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in spec:
        return " \\| ".join(_type_of(s) for s in spec["anyOf"])
    if "enum" in spec:
        return " \\| ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list[{_type_of(spec.get('items', {}))}]"
    if kind == "object" and "additionalProperties" in spec:
        return f"map → {_type_of(spec['additionalProperties'])}"
    if kind == "string" and spec.get("format"):
        return f"string ({spec['format']})"
    bounds = [f"{k}={spec[k]}" for k in ("minimum", "maximum", "exclusiveMinimum") if k in spec]
    return f"{kind} ({', '.join(bounds)})" if bounds else str(kind)


def _model_table(model: type[BaseModel]) -> list[str]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    lines = ["| field | type | required | default |", "| --- | --- | --- | --- |"]
    for name, spec in schema.get("properties", {}).items():
        default = json.dumps(spec["default"]) if "default" in spec else ""
        lines.append(f"| `{name}` | {_type_of(spec)} | {'yes' if name in required else ''} | {default} |")
    return lines


def render() -> str:
    out = ["# MQTT API", "",
           "Generated by `python -m shared.apidoc` from `shared/topics.py` and `shared/models/`; a test fails when",
           "they change and this file does not. Root `ampmq` (configurable). IDs are `[a-z0-9-]`. State topics are",
           "retained JSON with `v` (schema version) and `ts` (UTC ISO-8601); commands (`.../set`, `.../cmd/...`) are",
           "not retained: the owner validates them, applies them, and republishes the state. A payload that fails",
           "validation is not applied: the owner publishes an error report on `ampmq/<site>/errors`.",
           "", f"Try it: `mosquitto_sub -t '{T.all()}' -v` and",
           f"`mosquitto_pub -t {T.load_settings_set(SITE, LOAD)} -m '{{\"mode\": \"solar_only\"}}'`.", "",
           "## Topics", "", "| topic | payload | published by | retained |", "| --- | --- | --- | --- |"]
    for e in ENTRIES:
        model = f"[{e.model.__name__}](#{e.model.__name__.lower()})" if e.model else "`online` \\| `offline`"
        out.append(f"| `{_pattern(e.topic)}` | {model} | {e.publisher} | {'yes' if e.retained else 'no'} |")
    out += ["", "## Examples", ""]
    for e in ENTRIES:
        payload = e.example.model_dump_json(indent=2) if isinstance(e.example, BaseModel) else e.example
        out += [f"### `{_pattern(e.topic)}`", "", e.what, "", f"`{e.topic}`", "", "```json", payload, "```", ""]
    out += ["## Models", ""]
    seen: set[str] = set()
    for e in ENTRIES:
        if e.model and e.model.__name__ not in seen:
            seen.add(e.model.__name__)
            out += [f"### {e.model.__name__}", "", (e.model.__doc__ or "").strip().split("\n")[0], "",
                    *_model_table(e.model), ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    DOC_PATH.parent.mkdir(exist_ok=True)
    DOC_PATH.write_text(render())
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
