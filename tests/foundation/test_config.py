"""Configuration: YAML with environment overrides; a bad config names the field and the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field

from shared.config import AmpmqConfig, ConfigError, SectionModel, load_config

ROOT = Path(__file__).resolve().parents[2]


class AllocatorSection(SectionModel):
    min_interval: float = 1.0
    sites: dict[str, dict[str, float]] = Field(default_factory=dict)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("AMPMQ_"):
            monkeypatch.delenv(key)


def test_yaml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    conf = tmp_path / "ampmq.yaml"
    conf.write_text("root: house\nmqtt_url: mqtt://broker:1883\nallocator:\n  min_interval: 2.5\n")
    cfg = load_config(conf)
    assert (cfg.root, cfg.mqtt_url) == ("house", "mqtt://broker:1883")
    assert cfg.section("allocator", AllocatorSection).min_interval == 2.5
    monkeypatch.setenv("AMPMQ_MQTT_URL", "mqtt://other:1884")
    monkeypatch.setenv("AMPMQ_ALLOCATOR__MIN_INTERVAL", "0.5")
    cfg = load_config(conf)
    assert cfg.mqtt_url == "mqtt://other:1884"
    assert cfg.section("allocator", AllocatorSection).min_interval == 0.5


def test_bad_section_names_field_and_reason(clean_env: None) -> None:
    cfg = AmpmqConfig(allocator={"min_interval": "soon", "sitez": {}})
    with pytest.raises(ConfigError) as err:
        cfg.section("allocator", AllocatorSection)
    text = str(err.value)
    assert "allocator.min_interval" in text and "got 'soon'" in text
    assert "allocator.sitez" in text and "unknown key" in text


def test_unknown_top_level_key_and_bad_yaml(tmp_path: Path, clean_env: None) -> None:
    conf = tmp_path / "a.yaml"
    conf.write_text("mqtt_ulr: mqtt://x\n")
    with pytest.raises(ConfigError, match="mqtt_ulr"):
        load_config(conf)
    conf.write_text("root: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(conf)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_cli_stops_with_the_message(tmp_path: Path) -> None:
    conf = tmp_path / "a.yaml"
    conf.write_text("log_levl: DEBUG\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMQ_")}
    done = subprocess.run([sys.executable, "-m", "shared.cli", "--config", str(conf), "allocator"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "log_levl" in done.stderr


def test_loading_a_file_leaves_the_environment_alone(tmp_path: Path, clean_env: None) -> None:
    conf = tmp_path / "a.yaml"
    conf.write_text("root: house\n")
    assert load_config(conf).root == "house"
    assert "AMPMQ_CONFIG" not in os.environ
    assert load_config().root == "ampmq"


@pytest.mark.parametrize("url", ["http://allocator:S3cret@broker:1883", "mqtt://allocator:S3cret@:1883",
                                 "mqtt://allocator:S3cret@broker:99999"])
def test_an_unusable_broker_url_is_a_config_error_that_hides_the_password(url: str) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AMPMQ_")}, "AMPMQ_MQTT_URL": url}
    done = subprocess.run([sys.executable, "-m", "shared.cli", "allocator"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "mqtt_url" in done.stderr and "allocator:***@" in done.stderr
    assert "S3cret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_a_wrong_password_or_unreachable_broker_never_prints_the_password(mqtt_url: str) -> None:
    """The service keeps trying (the broker may come back) and says so, with the password masked."""
    from shared.mqtt import BrokerAddress

    address = BrokerAddress.parse(mqtt_url)
    for url in (f"mqtt://allocator:S3cret@{address.host}:1", f"mqtt://allocator:S3cret@{address.host}:{address.port}"):
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AMPMQ_")}, "AMPMQ_MQTT_URL": url}
        proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "allocator"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=4)
        except subprocess.TimeoutExpired:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
        assert "S3cret" not in out, out[-2000:]
        assert "reconnecting" in out or "connected to" in out, out[-2000:]  # it said what it does


def test_log_lines_mask_url_passwords_in_both_formats(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from shared.logsetup import setup_logging

    for json_format in (True, False):
        setup_logging("INFO", json_format=json_format)
        logging.getLogger("ampmq.test").warning("broker %s unreachable", "mqtts://op:p%40ss@broker:8883")
        try:
            raise ConnectionError("mqtt://allocator:S3cret@broker:1883 refused")
        except ConnectionError:
            logging.getLogger("ampmq.test").exception("failed")
    out = capsys.readouterr().out
    assert "p%40ss" not in out and "S3cret" not in out
    assert out.count("***@") >= 4
