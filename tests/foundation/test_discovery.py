"""Home Assistant discovery points at ampmq's own topics, what HA would send is a valid command, every config is
one HA's schema takes, and no template fails on a payload with values missing (a stale meter)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from shared.discovery import Discovery
from shared.models import (
    GridLimitState,
    LoadKind,
    LoadPlan,
    LoadSettings,
    LoadSettingsSet,
    LoadState,
    Mode,
    Phase,
    SessionSummary,
    SiteDecision,
    SiteMeasurement,
    SiteSettings,
    SiteSettingsSet,
)
from shared.models.measurement import CurrentReading, EnergyReading, PowerReading
from shared.topics import Topics

D = Discovery(Topics())
ENV = jinja2.Environment()


def render(template: str, **values: object) -> str:
    return ENV.from_string(template).render(**values)


def test_every_entity_uses_parseable_ampmq_topics_and_unique_ids() -> None:
    entities = D.site_entities("home") + D.load_entities("home", "garage-ev", "Garage")
    ids = [config["unique_id"] for _, config in entities]
    assert len(ids) == len(set(ids))
    for topic, config in entities:
        assert topic.startswith("homeassistant/") and topic.endswith("/config")
        for key in ("state_topic", "command_topic"):
            if key in config:
                assert Topics().parse(config[key]).site == "home"


@pytest.mark.parametrize("option", ["site", *(m.value for m in Mode)])
def test_load_mode_select_sends_a_valid_command(option: str) -> None:
    config = dict(D.load_entities("home", "ev"))["homeassistant/select/ampmq-home-ev/mode/config"]
    command = LoadSettingsSet.model_validate_json(render(config["command_template"], value=option))
    assert command.mode == (None if option == "site" else Mode(option))
    # and the state shown is read back from the retained settings
    settings = LoadSettings(site="home", load="ev", mode=command.mode)
    shown = render(config["value_template"], value_json=json.loads(settings.model_dump_json()))
    assert shown == option


def test_site_controls_send_valid_commands() -> None:
    entities = dict(D.site_entities("home"))
    fuse = entities["homeassistant/number/ampmq-home/fuse_limit/config"]
    assert SiteSettingsSet.model_validate_json(render(fuse["command_template"], value="32")).fuse_limit == 32.0
    strategy = entities["homeassistant/select/ampmq-home/strategy/config"]
    for option in strategy["options"]:
        assert SiteSettingsSet.model_validate_json(render(strategy["command_template"], value=option)).strategy
    settings = json.loads(SiteSettings(site="home").model_dump_json())
    assert render(strategy["value_template"], value_json=settings) == "priority"


# -- Home Assistant's own schema and templates ---------------------------------------------------------------

SCHEMA = json.loads((Path(__file__).parent / "home_assistant" / "mqtt_discovery_schema.json").read_text())
#: Rendered as strictly as can be: any undefined name or attribute used raises (HA only logs a warning and shows
#: the raw payload: "Template variable error: 'dict object' has no attribute 'A'").
STRICT = jinja2.Environment(undefined=jinja2.StrictUndefined)
ALL_KINDS: list[LoadKind | None] = [None, *LoadKind]


def every_entity() -> list[tuple[str, dict[str, object]]]:
    out = D.site_entities("home")
    for kind in ALL_KINDS:
        out += D.load_entities("home", f"load-{kind or 'unknown'}", "", kind)
    return out


def strict(template: str, payload: str) -> str:
    """``template`` rendered as HA does for an MQTT payload: ``value``, and ``value_json`` when it is JSON."""
    values: dict[str, object] = {"value": payload}
    with contextlib.suppress(ValueError):
        values["value_json"] = json.loads(payload)
    return STRICT.from_string(template).render(**values)


def check(config: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    unknown = set(config) - set(schema["keys"])
    assert not unknown, f"{where}: keys Home Assistant {SCHEMA['home_assistant']} drops silently: {unknown}"
    assert set(schema["required"]) <= set(config), f"{where}: missing {set(schema['required']) - set(config)}"
    for key, allowed in schema["enums"].items():
        if key in config:
            assert config[key] in allowed, f"{where}: {key} {config[key]!r} is not one of {allowed}"
    for key, inner in schema["nested"].items():
        for entry in config.get(key, []) if isinstance(config.get(key), list) else [config.get(key)]:
            if entry is not None:
                check(entry, inner, f"{where}.{key}")


@pytest.mark.parametrize(("topic", "config"), every_entity(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_config_is_what_home_assistants_schema_accepts(topic: str, config: dict[str, Any]) -> None:
    """Against the digest of HA's ``DISCOVERY_SCHEMA`` per platform (tests/foundation/home_assistant: written
    from HA 2024.3.3, the last release for Python 3.11, by digest_schema.py) and the units and state classes
    HA's sensor and number entities take for each device class (test_home_assistant_real.py checks the same configs
    with Home Assistant itself; this digest says why, key by key)."""
    platform = topic.split("/")[1]
    schema = SCHEMA["platforms"][platform]
    check(config, schema, topic)
    device_class = config.get("device_class")
    if device_class is not None and "device_class_units" in schema:
        units = schema["device_class_units"].get(device_class, [None])  # a class without units takes none
        assert config.get("unit_of_measurement") in units, topic
    state_class = config.get("state_class")
    if state_class is not None and device_class in schema.get("device_class_state_classes", {}):
        assert state_class in schema["device_class_state_classes"][device_class], topic
    for key in ("value_template", "command_template"):
        if key in config:
            jinja2.Environment().parse(config[key])  # every template parses


def test_devices_one_per_site_and_per_load_linked_to_their_site() -> None:
    devices = {json.dumps(config["device"], sort_keys=True) for _, config in every_entity()}
    assert len(devices) == 1 + len(ALL_KINDS)
    site = D.site_entities("home")[0][1]["device"]
    for _, config in D.load_entities("home", "ev", "Garage", LoadKind.EVSE):
        assert config["device"]["via_device"] == site["identifiers"][0]
        assert config["device"]["name"] == "Garage" and config["device"]["model"] == "EV charger"


def test_controls_are_configuration_and_explanations_diagnostics() -> None:
    for topic, config in every_entity():
        if topic.split("/")[1] in ("select", "number", "switch"):
            assert config["entity_category"] == "config", topic
    by_id = {config["unique_id"]: config for _, config in every_entity()}
    for unique_id in ("ampmq-home-stale", "ampmq-home-last-error", "ampmq-home-load-evse-reason"):
        assert by_id[unique_id]["entity_category"] == "diagnostic"


def test_energy_sensors_feed_home_assistants_energy_dashboard() -> None:
    for kind in ALL_KINDS:
        energy = dict(D.load_entities("home", "x", "", kind))["homeassistant/sensor/ampmq-home-x/energy/config"]
        assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
            "energy", "total_increasing", "kWh")
        state = LoadState(site="home", load="x", kind=LoadKind.ONOFF, rated_power=2000.0, energy=12345.6)
        assert strict(energy["value_template"], state.model_dump_json()) == "12.346"  # Wh -> kWh


SITE_ENERGY = {"grid_import_energy": "Grid import energy", "grid_export_energy": "Grid export energy",
               "solar_energy": "Solar energy"}


def test_the_sites_grid_and_solar_registers_feed_the_energy_dashboard_in_kwh() -> None:
    """Issue 17: the site's grid import, grid export and solar energy are sensors the Energy dashboard takes
    (kWh, ``total_increasing``), rendering the meters' Wh registers in kWh, ``None`` and unavailable when absent,
    and unavailable while the allocator finds the measurement stale like every measurement sensor."""
    entities = dict(D.site_entities("home"))
    at = datetime.now(UTC)
    reading = {"grid_import_energy": EnergyReading(ts=at, value=2126372.0, source="p1"),
               "grid_export_energy": EnergyReading(ts=at, value=30000.4, source="p1"),
               "solar_energy": EnergyReading(ts=at, value=157185.6, source="inverter")}
    full = SiteMeasurement(site="home", **reading).model_dump_json()
    shown = {"grid_import_energy": "2126.372", "grid_export_energy": "30.0", "solar_energy": "157.186"}
    for object_id, name in SITE_ENERGY.items():
        config = entities[f"homeassistant/sensor/ampmq-home/{object_id}/config"]
        assert config["name"] == name
        assert (config["device_class"], config["state_class"], config["unit_of_measurement"]) == (
            "energy", "total_increasing", "kWh")
        assert config["suggested_display_precision"] == 2
        assert strict(config["value_template"], full) == shown[object_id]
        own = [a for a in config["availability"] if a["topic"] == T.measurement("home")]
        assert strict(own[0]["value_template"], full) == "online"
        # a site whose meters have no such register (a Gen1 Shelly, no inverter): None and unavailable
        without = SiteMeasurement(site="home", **{k: v for k, v in reading.items() if k != object_id})
        assert strict(config["value_template"], without.model_dump_json()) == "None"
        assert strict(own[0]["value_template"], without.model_dump_json()) == "offline"
        stale = [a for a in config["availability"] if a["topic"] == T.decision("home")]
        assert strict(stale[0]["value_template"], SiteDecision(site="home", stale=True).model_dump_json()) == "offline"


def test_a_charger_shows_its_status_and_the_vehicles_soc() -> None:
    entities = dict(D.load_entities("home", "ev", "", LoadKind.EVSE))
    status = entities["homeassistant/sensor/ampmq-home-ev/charger_status/config"]
    soc = entities["homeassistant/sensor/ampmq-home-ev/vehicle_soc/config"]
    state = LoadState(site="home", load="ev", kind=LoadKind.EVSE, min_current=6.0, max_current=16.0, soc=62.4,
                      details={"ocpp_status": "Charging"})
    assert strict(status["value_template"], state.model_dump_json()) == "Charging"
    assert strict(soc["value_template"], state.model_dump_json()) == "62"
    without = state.model_copy(update={"soc": None, "details": {}}).model_dump_json()
    assert strict(soc["availability"][-1]["value_template"], without) == "offline"
    assert strict(status["availability"][-1]["value_template"], without) == "offline"
    # a plug has no charger entities
    assert not any("vehicle_soc" in t for t, _ in D.load_entities("home", "p", "", LoadKind.ONOFF))


def test_numbers_are_rounded_for_display() -> None:
    headroom = dict(D.site_entities("home"))["homeassistant/sensor/ampmq-home/headroom_a/config"]
    assert headroom["suggested_display_precision"] == 1
    decision = SiteDecision(site="home", headroom={Phase.A: 16.000173913043476})
    assert strict(headroom["value_template"], decision.model_dump_json()) == "16.0"
    power = dict(D.load_entities("home", "p"))["homeassistant/sensor/ampmq-home-p/power/config"]
    assert strict(power["value_template"], '{"power": 989.4999}') == "989"


T = Topics()
NO_LOAD_VALUES = {"power", "energy", "current", "vehicle_soc", "charger_status", "charging_state"}
#: (payload, which sensors have no value in it)
MISSING: list[tuple[str, Callable[[str, dict[str, Any]], bool]]] = [
    # the meter went stale: no phase, no power, no battery
    (SiteMeasurement(site="home").model_dump_json(), lambda _, c: c["state_topic"] == T.measurement("home")),
    # the decision on stale data: headroom {}
    (SiteDecision(site="home", stale=True).model_dump_json(), lambda _, c: c["state_topic"] == T.decision("home")),
    # a relay that reports no power, energy or draw; no SoC, no charger status
    (LoadState(site="home", load="x", kind=LoadKind.ONOFF, rated_power=10.0).model_dump_json(),
     lambda topic, c: c["state_topic"] == T.load_state("home", "x") and topic.split("/")[3] in NO_LOAD_VALUES),
    ("", lambda _, c: True),  # a cleared retained topic
    ("not json", lambda _, c: True),
]
STALE = MISSING[0][0]


@pytest.mark.parametrize(("payload", "missing"), MISSING, ids=["measurement", "decision", "load", "empty", "text"])
def test_missing_values_render_none_and_turn_the_sensor_unavailable(
    payload: str, missing: Callable[[str, dict[str, Any]], bool]
) -> None:
    """Every sensor renders ``None`` (HA: unknown, never an error or the raw JSON) when its value is missing,
    and its availability template on its state topic says ``offline`` (HA: unavailable)."""
    checked = 0
    for kind in ALL_KINDS:
        for topic, config in D.site_entities("home") + D.load_entities("home", "x", "", kind):
            if not topic.startswith("homeassistant/sensor/") or "last_error" in topic or not missing(topic, config):
                continue
            assert strict(config["value_template"], payload) == "None", topic
            own = [a for a in config["availability"] if a["topic"] == config["state_topic"]]
            assert own and strict(own[0]["value_template"], payload) == "offline", topic
            checked += 1
    assert checked >= 6


def test_a_fresh_measurement_makes_the_sensors_available_again() -> None:
    entities = dict(D.site_entities("home"))
    grid_a = entities["homeassistant/sensor/ampmq-home/grid_current_a/config"]
    solar = entities["homeassistant/sensor/ampmq-home/solar_power/config"]
    at = datetime.now(UTC)
    fresh = SiteMeasurement(site="home", grid_current={Phase.A: CurrentReading(ts=at, value=12.3456)},
                            solar_power=PowerReading(ts=at, value=3120.4)).model_dump_json()
    assert strict(grid_a["value_template"], fresh) == "12.35"
    assert strict(grid_a["availability"][-1]["value_template"], fresh) == "online"
    assert strict(solar["value_template"], fresh) == "3120"
    assert strict(solar["availability"][-1]["value_template"], fresh) == "online"


def test_a_charger_shows_its_charging_session() -> None:
    entities = dict(D.load_entities("home", "ev", "", LoadKind.EVSE))
    energy = entities["homeassistant/sensor/ampmq-home-ev/session_energy/config"]
    started = entities["homeassistant/sensor/ampmq-home-ev/session_started/config"]
    duration = entities["homeassistant/sensor/ampmq-home-ev/session_duration/config"]
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy", "total_increasing", "kWh")
    state = LoadState(site="home", load="ev", kind=LoadKind.EVSE, min_current=6.0, max_current=16.0, details={
        "session_energy_wh": 7421.0, "session_started": "2026-12-06T17:00:00+00:00", "session_seconds": 5430})
    payload = state.model_dump_json()
    assert strict(energy["value_template"], payload) == "7.421"
    assert strict(started["value_template"], payload) == "2026-12-06T17:00:00+00:00"
    assert strict(duration["value_template"], payload) == "90.5"


def entity_id(topic: str, config: dict[str, Any]) -> str:
    """The entity id Home Assistant gives a discovered entity: its platform, then its device's name and its
    own, lower case, with every run of other characters made one ``_``."""
    name = f"{config['device']['name']} {config['name']}".lower()
    return f"{topic.split('/')[1]}.{re.sub(r'[^a-z0-9]+', '_', name).strip('_')}"


def test_the_example_dashboard_names_only_entities_ampmq_announces() -> None:
    dashboard = yaml.safe_load((Path(__file__).parents[2] / "examples" / "home-assistant" / "dashboard.yaml")
                               .read_text())
    announced = {entity_id(t, c) for t, c in D.site_entities("home") + D.load_entities(
        "home", "garage", "Garage", LoadKind.EVSE) + D.load_entities("home", "boiler", "Boiler", LoadKind.ONOFF)}
    named: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "entity":
                    named.add(value)
                elif key == "entities":
                    named.update(e if isinstance(e, str) else e["entity"] for e in value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    assert len(named) >= 30
    assert named <= announced, named - announced


def test_a_charger_shows_its_last_finished_session() -> None:
    """Issue 17: the last session's energy, solar share and end, from the retained ``session/last``."""
    entities = dict(D.load_entities("home", "ev", "", LoadKind.EVSE))
    energy = entities["homeassistant/sensor/ampmq-home-ev/last_session_energy/config"]
    solar = entities["homeassistant/sensor/ampmq-home-ev/last_session_solar/config"]
    ended = entities["homeassistant/sensor/ampmq-home-ev/last_session_ended/config"]
    assert energy["state_topic"] == solar["state_topic"] == ended["state_topic"] == Topics().session_last("home", "ev")
    summary = SessionSummary(site="home", load="ev", ended=datetime(2026, 12, 6, 18, 0, tzinfo=UTC),
                             energy_wh=14_230.0, solar_share=63.4, id_tag="RFID-42")
    payload = summary.model_dump_json()
    assert strict(energy["value_template"], payload) == "14.23"
    assert strict(solar["value_template"], payload) == "63.4"
    assert strict(ended["value_template"], payload) == "2026-12-06T18:00:00Z"


def test_a_charger_shows_its_departure_plan() -> None:
    """Issue 18: whether the plan is on track, when it expects to finish and what it expects to cost, from the
    retained ``plan``; its slots and sentence as attributes."""
    entities = dict(D.load_entities("home", "ev", "", LoadKind.EVSE))
    plan = entities["homeassistant/sensor/ampmq-home-ev/plan/config"]
    finish = entities["homeassistant/sensor/ampmq-home-ev/plan_finish/config"]
    cost = entities["homeassistant/sensor/ampmq-home-ev/plan_cost/config"]
    assert plan["state_topic"] == plan["json_attributes_topic"] == Topics().plan("home", "ev")
    deadline = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    on_track = LoadPlan(site="home", load="ev", target_soc=80.0, capacity_wh=60_000.0, deadline=deadline,
                        expected_finish=datetime(2026, 12, 7, 3, 20, tzinfo=UTC), expected_cost=4.514)
    payload = on_track.model_dump_json()
    assert strict(plan["value_template"], payload) == "on track"
    assert strict(finish["value_template"], payload) == "2026-12-07T03:20:00Z"
    assert strict(cost["value_template"], payload) == "4.51"
    short = on_track.model_copy(update={"feasible": False, "expected_finish": None}).model_dump_json()
    assert strict(plan["value_template"], short) == "cannot be reached"
    assert strict(finish["value_template"], short) == "None"


def test_the_grid_operator_limit_shows_when_it_is_in_force() -> None:
    config = dict(D.site_entities("home"))["homeassistant/binary_sensor/ampmq-home/grid_operator_limit/config"]
    assert config["state_topic"] == Topics().grid_limit("home")
    on = GridLimitState(site="home", in_force=True, controllable_cap_w=4200.0, why="set by steuerbox")
    assert strict(config["value_template"], on.model_dump_json()) == "ON"
    assert strict(config["value_template"], GridLimitState(site="home").model_dump_json()) == "OFF"
