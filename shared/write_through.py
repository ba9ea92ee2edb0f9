"""Publishing that puts a message on the socket at once, not when the event loop next polls.

aiomqtt has paho ask for a socket writer on the event loop (``call_soon_threadsafe(add_writer)``) for every
publication, so a message waits in paho's buffer until the loop comes round to the writer: after whatever the
publishing task does next. Traced at 1 000 chargers (``bench/hops.py``), the allocator's cut setpoints sat in
that buffer while it built the next setpoint and the decision's report, and through a collection in between:
1-3 ms of every reaction, more in the tail.

:class:`WriteThrough` publishes through paho and writes at once (``loop_write``): one ``send`` per packet, as
paho's writer makes anyway. Only when the socket takes part of it (its buffer is full) does the rest go to
aiomqtt's writer on the loop. Registrations that do not come from a publication here (a PUBACK paho queues
while reading, the connect) still go to aiomqtt's writer; one of those still queued when a publication here
has already written everything would find nothing to write and, as paho no longer counts it registered, stay
registered on an idle socket (the loop would spin on it), so it is removed on the loop's next turn.

Publications that belong together (a decision's setpoints) can go in one push (:meth:`WriteThrough.together`):
each still reaches the kernel as it is published, but the socket is corked (``TCP_CORK``) until the last, so
the broker is woken once for all of them. A wake-up is what a ``send`` to an idle peer costs (some 70 µs on a
2-core VM, against 1 µs to a busy one), and the peer woken by the first setpoint could otherwise run before
the second was written. What the tasks woken by an urgent message publish in the event loop's turn goes in
one push too: the runtime's inbox corks the socket for that turn when a handler hurries (a site's commands,
one from each load's task; :mod:`shared.cork`).

Called in the event loop's thread only (the runtime publishes from its tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt

from .cork import TCP_CORK, set_option


class WriteThrough:
    """paho's publish, written to the socket before it returns."""

    def __init__(self, paho: mqtt.Client, loop: asyncio.AbstractEventLoop) -> None:
        self.paho = paho
        self.loop = loop
        #: aiomqtt's registration of a writer on its loop (thread-safe; paho calls it when it has data to send).
        deferred = paho.on_socket_register_write
        if deferred is None:
            raise RuntimeError("paho has no socket writer registered: connect through aiomqtt first")
        self._deferred: Callable[[mqtt.Client, Any, Any], None] = deferred
        self._publishing = False
        self._writer_asked = False
        #: Inside :meth:`together`; and the socket it corked at the block's first publication, if any.
        self._together = False
        self._corked: socket.socket | None = None
        paho.on_socket_register_write = self._register

    def _register(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._publishing:
            return  # publish() writes it now
        self._writer_asked = True
        self._deferred(client, userdata, sock)

    def publish(self, topic: str, payload: str | bytes, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        paho = self.paho
        if self._together and self._corked is None:
            self._cork()
        self._publishing = True
        try:
            info = paho.publish(topic, payload, qos=qos, retain=retain)
        finally:
            self._publishing = False
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return info
        paho.loop_write()  # a lost connection is paho's to report (on_disconnect), as from aiomqtt's writer
        sock = paho.socket()
        if sock is None:
            return info
        if paho.want_write():
            # the socket's buffer is full: the loop's writer sends the rest when it drains
            self._writer_asked = True
            self._deferred(paho, None, sock)
        elif self._writer_asked:
            self._writer_asked = False
            self.loop.call_soon(self._drop_idle_writer)
        return info

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """The publications made inside reach the broker in one push, when the block ends. Nothing may wait
        inside (the cork would hold whatever else is published meanwhile). The socket is corked at the first
        publication inside: a block that publishes nothing (a decision at rest, whose setpoints are all
        unchanged) costs no system call. Where the socket cannot be corked (not TCP, not Linux), each goes
        as it is published. A block inside another is part of it: the outer one pushes."""
        if self._together:
            yield
            return
        self._together = True
        try:
            yield
        finally:
            self._together = False
            corked, self._corked = self._corked, None
            if corked is not None and TCP_CORK is not None:
                set_option(corked, TCP_CORK, 0)

    def _cork(self) -> None:
        sock = self.paho.socket()  # TLS too (an SSLSocket is a socket); a websocket transport wraps its own
        if TCP_CORK is not None and isinstance(sock, socket.socket) and set_option(sock, TCP_CORK, 1):
            self._corked = sock

    def _drop_idle_writer(self) -> None:
        sock = self.paho.socket()
        if sock is not None and sock.fileno() >= 0 and not self.paho.want_write():
            self.loop.remove_writer(sock.fileno())


__all__ = ["WriteThrough"]
