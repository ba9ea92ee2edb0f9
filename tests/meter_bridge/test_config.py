"""The ``meter_bridge`` section: every documented example is valid; mistakes are named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.meter_bridge.config import MeterBridgeConfig
from shared.config import AmpmqConfig, ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "meters.md"


def doc_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def test_every_driver_has_a_documented_example() -> None:
    drivers = {
        source["driver"]
        for example in doc_examples()
        for site in example["meter_bridge"]["sites"].values()
        for source in site["sources"]
    }
    assert drivers == {"mqtt_json", "shelly", "tasmota", "homewizard", "dsmr", "modbus"}


@pytest.mark.parametrize("example", doc_examples(), ids=lambda e: ",".join(e["meter_bridge"]["sites"]))
def test_documented_examples_validate(example: dict[str, Any]) -> None:
    config = AmpmqConfig(meter_bridge=example["meter_bridge"])
    section = config.section("meter_bridge", MeterBridgeConfig)
    assert section.sites


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ({"id": "x", "driver": "zigbee"}, "driver"),
        ({"id": "x", "driver": "shelly", "prefix": "p", "phase_map": {4: "A"}}, "phase_map"),
        ({"id": "x", "driver": "shelly", "prefix": "p", "colour": "red"}, "colour"),
        ({"id": "x", "driver": "dsmr", "tcp": "host-without-port"}, "host:port"),
        ({"id": "x", "driver": "dsmr", "tcp": "h:1", "serial": "/dev/ttyUSB0"}, "exactly one"),
        ({"id": "x", "driver": "modbus", "host": "h", "sunspec": False}, "register map"),
        ({"id": "x", "driver": "mqtt_json", "values": [{"topic": "t", "unit": "A"}]}, "phase"),
        ({"id": "Bad Id", "driver": "shelly", "prefix": "p"}, "id"),
        ({"id": "x", "driver": "modbus", "host": "h", "sunspec": False,
          "registers": [{"address": 7, "quantity": "voltage"}]}, "needs its phase"),
    ],
)
def test_mistakes_are_rejected_naming_the_field(source: dict[str, Any], named: str) -> None:
    config = AmpmqConfig(meter_bridge={"sites": {"home": {"sources": [source]}}})
    with pytest.raises(ConfigError, match=re.escape(named)):
        config.section("meter_bridge", MeterBridgeConfig)


def test_duplicate_source_ids_and_reserved_site() -> None:
    twice = {"id": "grid", "driver": "shelly", "prefix": "p"}
    with pytest.raises(ConfigError, match="unique"):
        AmpmqConfig(meter_bridge={"sites": {"home": {"sources": [twice, twice]}}}).section(
            "meter_bridge", MeterBridgeConfig)
    with pytest.raises(ConfigError, match="reserved"):
        AmpmqConfig(meter_bridge={"sites": {"services": {"sources": [twice]}}}).section(
            "meter_bridge", MeterBridgeConfig)


def test_solar_source_detection() -> None:
    config = MeterBridgeConfig.model_validate({"sites": {
        "a": {"sources": [{"id": "g", "driver": "shelly", "prefix": "p"}]},
        "b": {"sources": [{"id": "g", "driver": "shelly", "prefix": "p"},
                          {"id": "pv", "driver": "tasmota", "device": "d", "role": "solar"}]},
    }})
    assert not config.sites["a"].has_solar_source()
    assert config.sites["b"].has_solar_source()
