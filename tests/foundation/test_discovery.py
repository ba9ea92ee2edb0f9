"""Home Assistant discovery points at ampmq's own topics, and what HA would send is a valid command."""

from __future__ import annotations

import json

import jinja2
import pytest

from shared.discovery import Discovery
from shared.models import LoadSettings, LoadSettingsSet, Mode, SiteSettings, SiteSettingsSet
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
