"""Holding a TCP socket's writes so that several go out in one push (Linux's ``TCP_CORK``).

Every ``send`` to a process that waits on the other end wakes it, and on loopback the kernel runs the woken
reader on the writer's CPU: traced at 1 000 chargers, a service that sent one charger's cut and went on to
the next was taken off the CPU in mid-``send`` for 0.5-2 ms while the broker (or the charger) it woke ran.
Corked, each ``send`` only copies into the socket; taking the cork out pushes everything at once.

:class:`TurnCork` holds sockets until the end of the event loop's current turn: the callbacks already due
run first (each task a message woke, sending its part), then every socket held is pushed.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol

#: Linux's option that holds a socket's partial segments until it is cleared (None elsewhere).
TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


class SocketLike(Protocol):
    """A socket, or asyncio's wrapper of a transport's socket."""

    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


def set_option(sock: SocketLike, option: int, value: int) -> bool:
    """Set a TCP option; False where the socket has none (a Unix socket) or is gone."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError:
        return False
    return True


class TurnCork:
    """Sockets held until the event loop's current turn ends (each at most once a turn).

    A socket held from a callback is pushed by a release queued behind the callbacks already due, which in
    asyncio include every I/O callback of the turn. Where the holders are known to be due next (the tasks a
    hurried message just woke), :meth:`release_soon`, called before they run, queues the release right behind
    them instead.
    """

    def __init__(self) -> None:
        self._held: list[SocketLike] = []
        self._due = False

    def hold(self, sock: SocketLike | None) -> None:
        """Hold ``sock``'s writes to the end of this turn of the running loop; nothing where it cannot be
        corked."""
        if sock is None or TCP_CORK is None or any(held is sock for held in self._held):
            return
        if not set_option(sock, TCP_CORK, 1):
            return
        self._held.append(sock)
        self.release_soon()

    def release_soon(self) -> None:
        """Queue the release now (unless one is queued): it pushes what the callbacks queued before it hold."""
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self._release)

    @property
    def holding(self) -> int:
        return len(self._held)

    def _release(self) -> None:
        self._due = False
        held, self._held = self._held, []
        if TCP_CORK is None:
            return
        for sock in held:
            set_option(sock, TCP_CORK, 0)  # (a socket closed meanwhile: nothing left to push)


__all__ = ["TCP_CORK", "SocketLike", "TurnCork", "set_option"]
