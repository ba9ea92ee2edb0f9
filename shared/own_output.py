"""A service's own output, read back: a message whose bytes are those the service itself last published on
its topic is no news, and is dropped before it is parsed.

A service that subscribes to what it publishes, retained — the allocator reads its setpoints, decisions and
limits back, to go on after a restart or from another instance's — has the broker echo every publication to
it. Parsed and handled, the echo changes nothing (what it says is what the service already holds), yet a
site's cut costs the allocator three of them, taken in while the loads and the gateway are acting on that cut
on the same CPUs. A publication by anyone else (another instance, a person with ``mosquitto_pub``), a
retained copy from before a restart, or an older echo overtaken by a newer publication has other bytes and is
handled as before.
"""

from __future__ import annotations


class OwnOutput:
    """What this service last published on each topic it reads back (the runtime knows which: a route declared
    with ``own``), and the echoes of it dropped."""

    def __init__(self) -> None:
        self._last: dict[str, bytes] = {}
        #: Echoes recognised and dropped.
        self.echoes = 0

    def published(self, topic: str, data: str | bytes) -> None:
        """This service published ``data`` on ``topic``, one of those it reads back."""
        self._last[topic] = data.encode() if isinstance(data, str) else data

    def echo(self, topic: str, payload: bytes) -> bool:
        """Whether ``payload`` on ``topic`` is what this service last published there (counted)."""
        if self._last.get(topic) != payload:
            return False
        self.echoes += 1
        return True


__all__ = ["OwnOutput"]
