"""Brokers ampmq can start itself: an embedded amqtt broker for ``ampmq run`` / ``make demo``, and a
Mosquitto process on a free port (tests, benchmarks), optionally with users and an ACL."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any


class BrokerStartError(RuntimeError):
    """A broker could not be started; the message says why."""


#: The niceness a Mosquitto we start runs at, where the machine lets us raise it (root, or CAP_SYS_NICE):
#: every message passes through the broker, and a burst it forwards — a decision's setpoints, a cut's
#: commands — should leave whole before the services it wakes take its CPU. Measured at 1 000 chargers on two
#: cores (three pairs of runs): the four broker hops of a cut 0.33-0.39 ms shorter in all, most of it where the
#: broker passes a site's two commands to the gateway (bench/README.md). docker-compose.yml gives the broker's
#: container the same precedence (cpu_shares).
BROKER_NICENESS = -10


def raise_priority(pid: int, niceness: int = BROKER_NICENESS) -> int | None:
    """Set process ``pid``'s niceness to ``niceness`` if allowed; the niceness it runs at (None: it is gone)."""
    with contextlib.suppress(OSError):  # not permitted (no CAP_SYS_NICE): it runs as everything else
        os.setpriority(os.PRIO_PROCESS, pid, niceness)
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise BrokerStartError(f"nothing listens on {host}:{port} after {timeout}s")


@contextlib.asynccontextmanager
async def embedded_broker(host: str = "127.0.0.1", port: int | None = None) -> AsyncIterator[str]:
    """Run an amqtt broker in this event loop; yields its ``mqtt://`` URL. The broker is a demo extra
    (``pip install 'ampmq[demo]'``): without it, a :class:`ConfigError` says to name a broker instead."""
    try:
        from amqtt.broker import Broker  # type: ignore[import-untyped]
    except ImportError as exc:
        from .config import ConfigError

        raise ConfigError("config: mqtt_url: empty, and the embedded broker is not installed; set AMPMQ_MQTT_URL "
                          "to your broker (or install the demo extra: pip install 'ampmq[demo]')") from exc

    port = port or free_port(host)
    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "sys_interval": 0,
        "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
        "topic-check": {"enabled": False},
    }
    broker = Broker(config)
    await broker.start()
    try:
        yield f"mqtt://{host}:{port}"
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(broker.shutdown(), 5)


class Mosquitto:
    """A ``mosquitto`` process on a free port with a generated config.

    ``users`` maps user names to passwords (anonymous access is then off); ``acl`` lines follow
    Mosquitto's acl_file syntax. ``restart()`` keeps the port, so clients can reconnect. With
    ``own_session`` the process is out of the terminal's process group: a Ctrl-C meant for its owner (the
    demo, which then stops its clients first) does not kill the broker under them.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        users: Mapping[str, str] | None = None,
        acl: Sequence[str] | None = None,
        own_session: bool = False,
    ) -> None:
        found = binary or shutil.which("mosquitto") or _sbin("mosquitto")
        if not found:
            raise BrokerStartError("no mosquitto binary on PATH (make test installs Debian's mosquitto)")
        self.binary = found
        self.host = host
        self.port = port or free_port(host)
        self.users = dict(users or {})
        self.acl = list(acl or [])
        self._dir = Path(tempfile.mkdtemp(prefix="ampmq-mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.own_session = own_session
        #: The niceness the broker process runs at (see BROKER_NICENESS); None until started (or if it died).
        self.niceness: int | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def url_for(self, user: str) -> str:
        return f"mqtt://{user}:{self.users[user]}@{self.host}:{self.port}"

    def _write_config(self) -> Path:
        # As root, mosquitto would drop to the "mosquitto" user and lose access to our private folder.
        lines = [f"user {getpass.getuser()}", f"listener {self.port} {self.host}", "persistence false",
                 "log_dest stderr", "log_type error", "log_type warning", "max_queued_messages 100000",
                 # Control traffic is small messages: without this, Nagle holds each one up to ~40 ms.
                 "set_tcp_nodelay true"]
        if self.users:
            pwfile = self._dir / "passwd"
            pwfile.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            pwfile.chmod(0o600)
            passwd_tool = shutil.which("mosquitto_passwd") or _sbin("mosquitto_passwd")
            if not passwd_tool:
                raise BrokerStartError("mosquitto_passwd is missing: cannot set up users")
            subprocess.run([passwd_tool, "-U", str(pwfile)], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl:
            aclfile = self._dir / "acl"
            aclfile.write_text("\n".join(self.acl) + "\n")
            lines.append(f"acl_file {aclfile}")
        conf = self._dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> Mosquitto:
        conf = self._write_config()
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=self.own_session,
        )
        self.niceness = raise_priority(self._proc.pid)
        try:
            wait_for_port(self.host, self.port)
        except BrokerStartError as exc:
            self.stop()
            raise BrokerStartError(f"mosquitto did not start: {exc}") from exc
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """Stop as a power loss or ``kill -9`` would: no Last Will sent to anyone, nothing saved."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def _sbin(name: str) -> str | None:
    for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/bin"):
        path = Path(folder) / name
        if path.exists():
            return str(path)
    return None
