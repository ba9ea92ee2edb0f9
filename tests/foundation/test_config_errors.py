"""Config errors as sentences: each of issue 15's examples, run as a person runs it (``ampmq <service>``,
``ampmq run``, ``python -m services.<x>``), stops with one line naming the path, the value and what is
expected, exit status 2, no traceback — also when the error is inside a service's section, found only once
the supervisor starts the service."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AMPMQ = [str(Path(sys.executable).parent / "ampmq")] if (Path(sys.executable).parent / "ampmq").exists() else [
    sys.executable, "-m", "shared.cli"]
#: Nothing listens here: a service that got past its config would only retry (and the test time out).
NO_BROKER = "mqtt://127.0.0.1:9"

SHELLY = "{driver: shelly, prefix: shellypro3em-x, id: grid}"
EXAMPLES = {
    "fuse_limit": ("allocator:\n  sites:\n    home: {fuse_limit: 'x'}\n", {},
                   ["allocator.sites", "fuse_limit", "'x'", "valid number"]),
    "unknown_key": ("allocator:\n  settel: 2\n", {}, ["allocator.settel", "unknown key", "2"]),
    "missing_id": ("meter_bridge:\n  sites:\n    home:\n      sources: [{driver: shelly, prefix: p}]\n", {},
                   ["meter_bridge.sites.home.sources.0", ".id", "required"]),
    "unknown_type": ("load_adapters:\n  loads: [{type: toaster, site: home, id: t}]\n", {},
                     ["load_adapters.loads.0", "'toaster'", "expected tags"]),
    "shelly_prefix": ("meter_bridge:\n  sites:\n    home:\n      sources: [{driver: shelly, id: grid}]\n", {},
                      ["meter_bridge.sites.home.sources.0", ".prefix", "required"]),
    "env_override": ("allocator: {}\n", {"AMPMQ_ALLOCATOR__SETTLE": "abc"},
                     ["allocator.settle", "AMPMQ_ALLOCATOR__SETTLE", "'abc'", "valid number"]),
    "url": ("root: ampmq\n", {"AMPMQ_MQTT_URL": "http://broker:1883"}, ["mqtt_url", "AMPMQ_MQTT_URL", "mqtt://"]),
    "password_in_url": ("root: ampmq\n", {"AMPMQ_MQTT_URL": "mqtt://allocator:p#ss@broker:1883"},
                        ["mqtt_url", "percent-encode", "mqtt_password"]),
    "tls_file": ("root: ampmq\n", {"AMPMQ_MQTT_TLS__CA_FILE": "/nope/ca.crt"},
                 ["mqtt_tls", "AMPMQ_MQTT_TLS__CA_FILE", "/nope/ca.crt", "not a readable file"]),
}
SERVICE_OF = {"fuse_limit": "allocator", "unknown_key": "allocator", "missing_id": "meter-bridge",
              "unknown_type": "load-adapters", "shelly_prefix": "meter-bridge", "env_override": "allocator",
              "url": "allocator", "password_in_url": "allocator", "tls_file": "allocator"}
MODULE_OF = {"allocator": "services.allocator", "meter-bridge": "services.meter_bridge",
             "load-adapters": "services.load_adapters"}


def run(args: list[str], config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AMPMQ_")}
    base.setdefault("AMPMQ_MQTT_URL", NO_BROKER)
    full = {**base, "AMPMQ_MQTT_URL": NO_BROKER, **env}
    return subprocess.run([a.replace("{config}", str(config)) for a in args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=60)


def assert_one_sentence(done: subprocess.CompletedProcess[str], words: list[str]) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("config")]
    assert len(lines) == 1, done.stderr[-2000:]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "p#ss" not in done.stderr  # a password is never echoed


def test_each_example_is_one_line_with_exit_2(tmp_path: Path) -> None:
    """Every example, each run as ``ampmq <service> --config F`` (side by side: they are independent)."""

    def check(example: str) -> None:
        text, env, words = EXAMPLES[example]
        config = tmp_path / f"{example}.yaml"
        config.write_text(text)
        try:
            assert_one_sentence(run([*AMPMQ, SERVICE_OF[example], "--config", "{config}"], config, env), words)
        except AssertionError as exc:
            raise AssertionError(f"{example}: {exc}") from None

    with ThreadPoolExecutor(max_workers=4) as pool:
        for done in [pool.submit(check, example) for example in EXAMPLES]:
            done.result()


def test_every_entry_point_turns_a_section_error_into_the_line(tmp_path: Path) -> None:
    """``ampmq run --config F``, ``ampmq --config F run``, ``python -m services.allocator --config F``."""
    text, env, words = EXAMPLES["fuse_limit"]
    config = tmp_path / "ampmq.yaml"
    config.write_text(text)
    entries = [[*AMPMQ, "run", "--config", "{config}", "--for", "20"],
               [*AMPMQ, "--config", "{config}", "run", "--for", "20"],
               [sys.executable, "-m", MODULE_OF["allocator"], "--config", "{config}"]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        for done in [pool.submit(run, args, config, env) for args in entries]:
            assert_one_sentence(done.result(), words)


def test_the_option_after_the_command_names_the_file(tmp_path: Path) -> None:
    """``ampmq run --config F`` was refused ("unrecognized arguments"); now F is read."""
    done = run([*AMPMQ, "acl", "--config", "{config}"], tmp_path / "missing.yaml", {})
    assert done.returncode == 2 and "missing.yaml does not exist" in done.stderr
