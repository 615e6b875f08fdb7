"""How a connection moves bytes: a plain socket or a TLS stream, behind one small interface.

A transport receives (``b""`` at the end), writes whole (counting every byte
that reached the socket into the client's ``bytes_out`` as it goes, and giving
up with ``SlowReader`` past the write timeout), and closes gracefully or at
once. The mode handlers use this interface; only the plain echo's hot loop
goes around it, to the socket itself (``PlainTransport.sock``), when the
transport is exactly a ``PlainTransport``. A later wrapper (a fault, a
recording tap) is a ``Transport`` around another one, so a client with none
keeps the hot loop.
"""

from __future__ import annotations

import contextlib
import math
import socket
from collections.abc import Awaitable
from typing import Protocol

import trio

from tui_echo.server.clients import ClientState


class SlowReader(Exception):
    """The client took none of the bytes written to it for the write timeout."""


class FaultEnded(Exception):
    """A fault ends the client (``server/fault_transport.py``): by RST when ``reset``, else by a clean close."""

    def __init__(self, reset: bool, why: str) -> None:
        super().__init__(why)
        self.reset = reset
        self.why = why


class WriteTimeout:
    """How long a write may wait for the client to read, and whether one is waiting now.

    While a write waits, the client is busy, not idle: the idle reaper reads ``waiting``.
    """

    __slots__ = ("seconds", "waiting")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = math.inf if seconds is None else seconds
        self.waiting = False

    async def wait_for_reader(self, write: Awaitable[object]) -> None:
        """Await ``write``, which waits for the client to read; past ``seconds`` raise SlowReader."""
        self.waiting = True
        try:
            with trio.move_on_after(self.seconds) as waited:
                await write
        finally:
            self.waiting = False
        if waited.cancelled_caught:
            raise SlowReader


class Transport(Protocol):
    def receive(self, size: int) -> Awaitable[bytes | bytearray]:
        """The client's next bytes, at most ``size``; ``b""`` at its end. A bytearray is the caller's to keep.

        An awaitable rather than a coroutine function, so that a transport may hand out its stream's
        own (no frame of its own on every wait)."""
        ...

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, counting it in ``bytes_out``; SlowReader past the write timeout."""
        ...

    async def close_gracefully(self, linger: float) -> None:
        """Say goodbye (FIN; TLS: close_notify first), let the client read what it was sent, then close;
        ``linger`` bounds the whole."""
        ...

    def shut_down(self) -> bool:
        """The server stops: FIN to the client now, and its receives end as at its EOF, with no
        cancellation and no wait. False if this transport cannot (TLS: close_notify needs its task)."""
        ...

    def close(self) -> None:
        """Close now (wakes any task waiting on it)."""
        ...


class PlainTransport:
    """A non-blocking stdlib socket with trio's readiness waits: one scheduler yield per chunk, and a
    readiness wait only when the client has sent nothing yet."""

    __slots__ = ("sock", "_state", "_timeout")

    def __init__(self, sock: socket.socket, state: ClientState, timeout: WriteTimeout) -> None:
        self.sock = sock
        self._state = state
        self._timeout = timeout

    async def receive(self, size: int) -> bytes:
        # The others first (a client that never pauses must not starve them): by the time this task runs
        # again its client has usually answered, and the recv needs no readiness wait, which in trio
        # re-arms epoll and parks the task (see modes/echo.py's _echo_socket, which does the same).
        await trio.lowlevel.checkpoint()
        sock = self.sock
        while True:
            try:
                return sock.recv(size)
            except BlockingIOError:
                pass
            # Waits outside the except: inside it, each idle client would keep its exception and traceback alive.
            await trio.lowlevel.wait_readable(sock)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Only a write that has to wait pays for the write timeout: each wait may last that long at most."""
        sock, state = self.sock, self._state
        view = memoryview(data)
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                sent = -1
            if sent < 0:  # waits outside the except (see receive)
                await self._timeout.wait_for_reader(trio.lowlevel.wait_writable(sock))
                continue
            state.bytes_out += sent
            view = view[sent:]

    async def close_gracefully(self, linger: float) -> None:
        await close_socket_gracefully(self.sock, linger)

    def shut_down(self) -> bool:
        # SHUT_RD wakes a task waiting to read as EOF would (recv gives b""); SHUT_WR sends the FIN
        # after what was written, so the client reads all of it, then EOF. Input that comes after
        # is answered with a reset by the kernel, after that EOF.
        with contextlib.suppress(OSError):  # the client has gone already
            self.sock.shutdown(socket.SHUT_RDWR)
        return True

    def close(self) -> None:
        close_socket(self.sock)


class TlsTransport:
    """trio's SSLStream over the client's socket, after a finished handshake. Counts plaintext bytes."""

    __slots__ = ("stream", "sock", "_state", "_timeout")

    def __init__(
        self, stream: trio.SSLStream[trio.SocketStream], sock: socket.socket, state: ClientState, timeout: WriteTimeout
    ) -> None:
        self.stream = stream
        self.sock = sock
        self._state = state
        self._timeout = timeout

    def receive(self, size: int) -> Awaitable[bytes | bytearray]:
        return self.stream.receive_some(size)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """The write timeout bounds the whole write: TLS hides partial progress."""
        await self._timeout.wait_for_reader(self.stream.send_all(data))
        self._state.bytes_out += len(data)

    async def close_gracefully(self, linger: float) -> None:
        """close_notify, then the plain close, all within ``linger``.

        ``unwrap`` sends close_notify at once, then waits for the client's own,
        which it may never send: past the deadline the socket closes regardless.
        """
        deadline = trio.current_time() + linger
        # Broken by the cancelled echo, or an operator send is mid-write: close without it.
        with trio.move_on_at(deadline), contextlib.suppress(trio.BrokenResourceError, trio.BusyResourceError):
            await self.stream.unwrap()
        await close_socket_gracefully(self.sock, max(deadline - trio.current_time(), 0.0))

    def shut_down(self) -> bool:
        return False

    def close(self) -> None:
        close_socket(self.sock)


async def close_socket_gracefully(sock: socket.socket, linger: float) -> None:
    """Send FIN, then read and drop input until the client closes or ``linger`` runs out.

    Closing a socket with unread input sends RST, which can destroy echo the
    client has not read yet; draining first lets it see all of it, then EOF.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        with trio.move_on_after(linger):
            while True:
                try:
                    if not sock.recv(65536):
                        break
                    continue
                except BlockingIOError:
                    pass
                await trio.lowlevel.wait_readable(sock)  # outside the except (see PlainTransport.receive)
    except OSError:
        pass
    finally:
        close_socket(sock)


def close_socket(sock: socket.socket) -> None:
    trio.lowlevel.notify_closing(sock)  # wakes an operator send waiting on this socket
    sock.close()
