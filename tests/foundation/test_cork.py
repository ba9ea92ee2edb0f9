"""Holding a socket's writes to the end of the event loop's turn (``shared/cork.py``), on real sockets."""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Iterator

import pytest

from shared.cork import TCP_CORK, TurnCork

pytestmark = pytest.mark.skipif(TCP_CORK is None, reason="TCP_CORK is Linux's")


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair: (writer, reader)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        writer = socket.create_connection(server.getsockname())
        reader, _ = server.accept()
    with writer, reader:
        yield writer, reader


def readable(sock: socket.socket, within: float) -> bool:
    return bool(select.select([sock], [], [], within)[0])


def corked(sock: socket.socket) -> bool:
    """Whether the socket's writes are held (the kernel would push them itself only after 200 ms)."""
    return bool(sock.getsockopt(socket.IPPROTO_TCP, TCP_CORK or 0))


async def test_writes_wait_for_the_end_of_the_turn_then_go_in_one_push(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    """Two writes made in one turn reach the kernel but not the reader (not even 50 ms later) until the turn
    ends; then both arrive at once. The next turn's write goes at once again."""
    writer, reader = tcp_pair
    corks = TurnCork()
    corks.hold(writer)
    writer.sendall(b"first ")
    corks.hold(writer)  # a second command to the same charger in the same turn: held once
    writer.sendall(b"second")
    assert corks.holding == 1 and corked(writer)
    assert not readable(reader, 0.05), "pushed before the turn ended"
    await asyncio.sleep(0)  # the turn ends (the release was due before this task's next step)
    assert corks.holding == 0 and not corked(writer)
    assert readable(reader, 5.0)
    got = b""
    while len(got) < len(b"first second"):
        got += reader.recv(100)
    assert got == b"first second"
    writer.sendall(b"alone")
    assert readable(reader, 5.0)
    assert reader.recv(100) == b"alone"


async def test_several_sockets_are_held_and_all_pushed(tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    """A site's cut is a frame to each of its chargers: every socket held in the turn is pushed at its end."""
    first_writer, first_reader = tcp_pair
    with socket.create_server(("127.0.0.1", 0)) as server:
        second_writer = socket.create_connection(server.getsockname())
        second_reader, _ = server.accept()
    with second_writer, second_reader:
        corks = TurnCork()
        for sock, frame in ((first_writer, b"cut a"), (second_writer, b"cut b")):
            corks.hold(sock)
            sock.sendall(frame)
        assert corks.holding == 2
        assert not readable(first_reader, 0.05) and not readable(second_reader, 0.0)
        await asyncio.sleep(0)
        assert not corked(first_writer) and not corked(second_writer)
        assert readable(first_reader, 5.0) and readable(second_reader, 5.0)
        assert first_reader.recv(100) == b"cut a" and second_reader.recv(100) == b"cut b"


async def test_a_socket_that_cannot_be_corked_is_left_alone() -> None:
    """A Unix socket has no TCP_CORK: nothing is held, and what is written goes at once."""
    writer, reader = socket.socketpair()
    with writer, reader:
        corks = TurnCork()
        corks.hold(writer)
        corks.hold(None)  # a transport that has no socket
        assert corks.holding == 0
        writer.sendall(b"now")
        assert readable(reader, 5.0)
        assert reader.recv(10) == b"now"


async def test_a_release_queued_before_the_holders_pushes_right_behind_them(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    """The inbox queues the release before the tasks it woke run (release_soon): their frames go right behind
    them, not after every other callback of the turn (in asyncio: all of the turn's I/O callbacks)."""
    writer, reader = tcp_pair
    corks = TurnCork()
    loop = asyncio.get_running_loop()
    held_when_the_turn_went_on: list[bool] = []

    def woken_task() -> None:
        corks.hold(writer)
        writer.sendall(b"cut")

    loop.call_soon(woken_task)
    corks.release_soon()
    loop.call_soon(lambda: held_when_the_turn_went_on.append(corked(writer)))  # the turn's other work
    await asyncio.sleep(0)
    assert held_when_the_turn_went_on == [False], "the frame waited for the rest of the turn"
    assert readable(reader, 5.0) and reader.recv(10) == b"cut"
    corks.release_soon()  # nothing held: a release with nothing to push
    await asyncio.sleep(0)
    assert corks.holding == 0
