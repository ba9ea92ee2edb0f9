"""Writes ``mqtt_discovery_schema.json``: what Home Assistant's own MQTT discovery schemas accept, for the
platforms ampmq announces, so the tests can check every config against it without installing Home Assistant.

Run it with a Python that has ``homeassistant`` installed (it needs nothing of ampmq)::

    python -m venv /tmp/hass && /tmp/hass/bin/pip install homeassistant==2024.3.3
    /tmp/hass/bin/python tests/foundation/home_assistant/digest_schema.py

For each platform the digest names every key the platform's ``DISCOVERY_SCHEMA`` knows (Home Assistant drops
any other key without a word, so a misspelt or too-new option would silently do nothing), the keys it
requires, and for each key whose value is one of an enumeration (``device_class``, ``state_class``,
``entity_category``, ``availability_mode``, ...) the values allowed; the same for the nested ``device`` and
``availability`` entries; and, for sensors and numbers, the units and state classes each device class takes
(the entity refuses others when it starts).
"""

from __future__ import annotations

import enum
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.const import __version__

PLATFORMS = ["sensor", "binary_sensor", "select", "number", "switch"]
OUT = Path(__file__).with_name("mqtt_discovery_schema.json")


def mapping_of(validator: Any) -> dict[Any, Any] | None:
    """The key -> validator mapping inside ``validator`` (a Schema, possibly wrapped in All)."""
    if isinstance(validator, vol.Schema) and isinstance(validator.schema, dict):
        return validator.schema
    if isinstance(validator, dict):
        return validator
    for inner in getattr(validator, "validators", ()):
        found = mapping_of(inner)
        if found is not None:
            return found
    if isinstance(validator, list) and validator:
        return mapping_of(validator[0])
    return None


def choices(validator: Any) -> list[str] | None:
    """The values an enumeration-valued validator allows (In([...]) or Coerce(SomeEnum)), else None."""
    if isinstance(validator, vol.In):
        return sorted(str(v) for v in validator.container)
    if isinstance(validator, vol.Coerce) and isinstance(validator.type, type) and issubclass(validator.type, enum.Enum):
        return sorted(str(m.value) for m in validator.type)
    for inner in getattr(validator, "validators", ()):
        found = choices(inner)
        if found is not None:
            return found
    return None


def digest(schema: dict[Any, Any]) -> dict[str, Any]:
    keys, required, enums, nested = [], [], {}, {}
    for marker, validator in schema.items():
        name = str(marker.schema if isinstance(marker, vol.Marker) else marker)
        keys.append(name)
        if isinstance(marker, vol.Required):
            required.append(name)
        allowed = choices(validator)
        if allowed is not None:
            enums[name] = allowed
        inner = mapping_of(validator)
        if inner is not None and name in ("device", "availability", "origin"):
            nested[name] = digest(inner)
    return {"keys": sorted(keys), "required": sorted(required), "enums": enums, "nested": nested}


def main() -> int:
    platforms = {}
    for platform in PLATFORMS:
        module = importlib.import_module(f"homeassistant.components.mqtt.{platform}")
        schema = mapping_of(module.DISCOVERY_SCHEMA)
        assert schema is not None, platform
        platforms[platform] = digest(schema)
    # what the sensor and number entities (not the schema) insist on: a device class's units and state classes
    from homeassistant.components.number.const import DEVICE_CLASS_UNITS as NUMBER_UNITS
    from homeassistant.components.sensor.const import DEVICE_CLASS_STATE_CLASSES, DEVICE_CLASS_UNITS

    def units(table: dict[Any, Any]) -> dict[str, list[str | None]]:
        return {str(k.value): sorted((str(u) if u is not None else None for u in v), key=str)
                for k, v in table.items()}

    platforms["sensor"]["device_class_units"] = units(DEVICE_CLASS_UNITS)
    platforms["sensor"]["device_class_state_classes"] = {
        str(k.value): sorted(str(s.value) for s in v) for k, v in DEVICE_CLASS_STATE_CLASSES.items()}
    platforms["number"]["device_class_units"] = units(NUMBER_UNITS)
    OUT.write_text(json.dumps({"home_assistant": __version__, "platforms": platforms}, indent=1, sort_keys=True)
                   + "\n")
    print(f"wrote {OUT} from Home Assistant {__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
