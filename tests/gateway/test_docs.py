"""Every YAML block in docs/ocpp-gateway.md is a valid ``ocpp_gateway`` section."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from services.ocpp_gateway.config import GatewayConfig
from shared.config import AmpmqConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "ocpp-gateway.md"


def test_every_config_block_in_the_doc_is_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3
    for block in blocks:
        section = yaml.safe_load(block)["ocpp_gateway"]
        config = AmpmqConfig(ocpp_gateway=section).section("ocpp_gateway", GatewayConfig)
        assert config.default_site
