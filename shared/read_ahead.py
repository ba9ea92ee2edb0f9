"""Reading that takes everything the socket holds at once, and handles it before the event loop polls again.

paho reads a packet with two or three ``recv`` calls (its first byte, its length, the rest), and aiomqtt reads
one packet each time the event loop finds the socket readable. At 1 000 chargers a service's socket holds
tens of packets after any pause; each waited for a turn of the loop, behind every task those before it
woke. Traced (``bench/hops.py``), that wait was the largest part of a reaction's ``wire`` time.

:class:`ReadAhead` gives paho its bytes from one large ``recv`` (``CHUNK``), and replaces aiomqtt's reader
with one that goes on reading packets while bytes are buffered, up to ``SLICE`` seconds at a time: what is
left is read on the loop's next turn (the buffered bytes would not make the socket readable again), so a
burst never holds the loop for long. Packets are decoded and handed on in the order they came, as before.

Called in the event loop's thread only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

#: One ``recv``: several hundred of the services' packets.
CHUNK = 256 * 1024
#: The longest one turn of the reader goes on, so the tasks the packets woke run soon.
SLICE = 0.002


class ReadAhead:
    """paho's reads served from one buffer, drained while it holds bytes."""

    def __init__(self, paho: mqtt.Client, loop: asyncio.AbstractEventLoop,
                 on_error: Callable[[BaseException], None]) -> None:
        sock = paho.socket()
        if sock is None:
            raise RuntimeError("paho has no socket: connect through aiomqtt first")
        self.paho = paho
        self.loop = loop
        self._on_error = on_error
        self._recv = paho._sock_recv  # paho's own: the socket's recv, TLS's want-read/write turned into its terms
        self._buffer = memoryview(b"")
        self._fd = sock.fileno()
        #: How many ``recv`` calls returned bytes.
        self.reads = 0
        paho._sock_recv = self._sock_recv  # type: ignore[method-assign]
        loop.remove_reader(self._fd)
        loop.add_reader(self._fd, self.drain)

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._buffer:
            data = self._recv(CHUNK)  # raises BlockingIOError when there is nothing to read, as paho expects
            if not data:
                return data  # the connection's end: paho sees it as it would have
            self.reads += 1
            self._buffer = memoryview(data)
        chunk, self._buffer = self._buffer[:bufsize], self._buffer[bufsize:]
        return chunk.tobytes()

    def drain(self, for_at_most: float = SLICE) -> None:
        """Read packets while bytes wait (in the buffer, or in TLS's own), for at most ``for_at_most`` seconds;
        the rest on the loop's next turn (a drain with nothing left to read returns at once)."""
        paho = self.paho
        until = time.perf_counter() + for_at_most
        try:
            while True:
                paho.loop_read()
                sock = paho.socket()
                if sock is None:
                    return
                if not self._buffer and not (hasattr(sock, "pending") and sock.pending() > 0):
                    return
                if time.perf_counter() > until:
                    self.loop.call_soon(self.drain)
                    return
        except Exception as exc:  # as aiomqtt's own reader: a broken connection ends the session
            self._on_error(exc)


__all__ = ["ReadAhead"]
