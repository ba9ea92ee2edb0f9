"""When a frame reached a benchmark's websocket client: stamped as it comes off the socket."""

from __future__ import annotations

import collections
import time
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event


class StampingConnection(ClientConnection):
    """A websocket client connection that stamps each message as it comes off the socket: in the protocol's
    ``data_received``, before any task of this (busy) harness runs. A cut's latency ends when its frame reached
    the charge point, not when the harness's event loop came round to the charge point's task."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: collections.deque[float] = collections.deque()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):  # unfragmented messages
            self.stamps.append(time.perf_counter())
        super().process_event(event)

    def arrived(self) -> float:
        """The stamp of the message :meth:`recv` returned last: call it after each one (now, if it has none)."""
        return self.stamps.popleft() if self.stamps else time.perf_counter()

    async def recv_stamped(self) -> tuple[str | bytes, float]:
        """The next message and when it came off the socket."""
        message = await self.recv()
        return message, self.arrived()


__all__ = ["StampingConnection"]
