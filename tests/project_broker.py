"""The project's own broker conf (docker/mosquitto/mosquitto.conf) for a test: as shipped, pointed at a folder
and a port of the test's own, without users (anonymous), run as the user the tests run as."""

from __future__ import annotations

import getpass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_broker_conf(folder: Path, port: int) -> Path:
    """Write the project's broker conf, adapted to ``folder`` and ``port``, into ``folder``; its path."""
    lines = []
    for line in (ROOT / "docker" / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "persistence_location":
            line = f"persistence_location {folder}/"
        elif key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key in ("password_file", "acl_file", "log_dest"):
            continue
        elif key == "allow_anonymous":
            line = "allow_anonymous true"
        lines.append(line)
    conf = folder / "mosquitto.conf"
    conf.write_text("\n".join([f"user {getpass.getuser()}", *lines]) + "\n")
    return conf
