"""Checks ampmq's discovery configs with Home Assistant itself: each config through the MQTT platform's own
``DISCOVERY_SCHEMA``, and each template rendered by HA's MQTT template classes (``MqttValueTemplate`` for
state and availability, ``MqttCommandTemplate`` for commands) inside a running ``HomeAssistant`` core.

It runs with the Python of the Home Assistant virtualenv that ``make test`` builds (``.venv-ha``, pinned in
``requirements.txt`` beside this file) and needs nothing of ampmq: HA pins its own versions of libraries ampmq
uses. ``tests/foundation/test_home_assistant_real.py`` writes the cases (every config; every template with the
payloads it must handle and what plain Jinja makes of them) to a JSON file and passes its path::

    .venv-ha/bin/python tests/foundation/home_assistant/check_discovery.py cases.json

It prints one JSON object: the HA version, how many configs and renders it checked, and every disagreement;
its exit status is 1 when there is one.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import tempfile
from typing import Any

from homeassistant.components.mqtt.models import MqttCommandTemplate, MqttValueTemplate
from homeassistant.const import __version__
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template


def check_schemas(entities: list[list[Any]]) -> list[str]:
    """Each ``[topic, config]`` through its platform's DISCOVERY_SCHEMA; a refusal is a problem."""
    problems = []
    for topic, config in entities:
        platform = topic.split("/")[1]
        schema = importlib.import_module(f"homeassistant.components.mqtt.{platform}").DISCOVERY_SCHEMA
        try:
            schema(config)
        except Exception as exc:  # voluptuous says which key and why
            problems.append(f"{topic}: Home Assistant's schema refuses it: {exc}")
    return problems


def render(hass: HomeAssistant, case: dict[str, Any]) -> str:
    """The case's template rendered as HA's MQTT entity renders it."""
    template = Template(case["template"], hass)
    if case["kind"] == "command":
        return str(MqttCommandTemplate(template, hass=hass).async_render(case["value"]))
    return str(MqttValueTemplate(template, hass=hass).async_render_with_possible_json_value(case["payload"]))


async def check_renders(cases: list[dict[str, Any]]) -> list[str]:
    hass = HomeAssistant(tempfile.mkdtemp())
    problems = []
    try:
        for case in cases:
            try:
                got = render(hass, case)
            except Exception as exc:
                problems.append(f"{case['where']}: {type(exc).__name__}: {exc}")
                continue
            if got != case["expected"]:
                problems.append(f"{case['where']}: Home Assistant renders {got!r}, plain Jinja {case['expected']!r}")
    finally:
        await hass.async_stop(force=True)
    return problems


def main(path: str) -> int:
    with open(path) as f:
        cases = json.load(f)
    problems = check_schemas(cases["entities"]) + asyncio.run(check_renders(cases["renders"]))
    print(json.dumps({"home_assistant": __version__, "configs": len(cases["entities"]),
                      "renders": len(cases["renders"]), "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
