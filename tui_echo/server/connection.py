"""One client connection: its state, its transport, and its life from the first byte to the close.

The connection is the unit (as hypercorn's ``TCPServer`` and uvicorn's
protocol objects are): it owns its transport, its write lock, its write
timeout, its cancel scope and its close. A mode handler
(``tui_echo.server.modes``) runs it; the registry (``registry.py``) counts
it in and out. Nothing here knows the server.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol, TypeAlias

import trio

from tui_echo.server.clients import ClientState, ClientStatus
from tui_echo.net import describe_error
from tui_echo.server.events import ClientDisconnected, DisconnectReason
from tui_echo.server.relay import Outbound
from tui_echo.server.tls import describe_tls_error
from tui_echo.server.transport import FaultEnded, SlowReader, Transport, WriteTimeout

LINGER_SECONDS = 1.0  # how long a kicked client may take to close its side
SHUTDOWN_LINGER_SECONDS = 0.5  # the same when the whole server stops (it exits within 2 s)

# How a client's loop ended: its disconnect reason and, for an error, the error's text.
Ended: TypeAlias = tuple[DisconnectReason, str]


class Handoff:
    """A loop gives its client to another loop (a fault set or cleared): ``until_it_ends`` runs ``loop`` next.

    Returned, not awaited, so that switching back and forth any number of times never nests frames.
    """

    __slots__ = ("loop",)

    def __init__(self, loop: Coroutine[Any, Any, Ended | Handoff]) -> None:
        self.loop = loop


class ModeHandler(Protocol):
    """What a mode does with a connection (see ``tui_echo.server.modes``). A handler may subclass it
    for ``joined`` and ``left`` that do nothing."""

    # The kernel's send buffer of each client's socket, or None for the kernel's own (autotuned, up
    # to tcp_wmem's maximum: 4 MiB by default). The relay modes bound it (see relay.py).
    send_buffer: int | None = None

    def joined(self, conn: Connection) -> None:
        """The connection is about to become a client (before its ``ClientConnected``)."""
        return None

    def serve(self, conn: Connection) -> Coroutine[Any, Any, Ended | Handoff]:
        """The client's loop, run until it ends; returns how. Not a coroutine function itself,
        so that the hot loop is the task's direct callee: one frame less per scheduler yield."""
        ...

    def left(self, conn: Connection, gone: ClientDisconnected) -> None:
        """The client is gone for everyone (after its ``ClientDisconnected``; not while the server stops)."""
        return None


class Registrar(Protocol):
    """Where a connection is counted out (``tui_echo.server.registry.Registry``)."""

    @property
    def stopping(self) -> bool: ...

    def retire(self, conn: Connection, reason: DisconnectReason, error: str) -> ClientDisconnected:
        """The client is gone: uncount it and publish its ``ClientDisconnected``."""
        ...


class Connection:
    """A client: its public state, next to the handles only the server uses."""

    __slots__ = (
        "state",
        "transport",
        "scope",
        "close_reason",
        "write_lock",
        "pending_sends",
        "write_timeout",
        "outbound",
        "shut",
    )

    def __init__(self, state: ClientState, transport: Transport, write_timeout: WriteTimeout) -> None:
        self.state = state
        self.transport = transport  # plain or TLS; a later wrapper (fault, recording tap) replaces it with itself
        self.write_timeout = write_timeout  # shared with the transport, which waits under it
        self.scope = trio.CancelScope()
        self.close_reason: DisconnectReason | None = None  # set when the server closes it
        self.write_lock = trio.Lock()  # echo and operator sends never interleave bytes
        self.pending_sends = 0
        self.outbound: Outbound | None = None  # chat and broker: what the others said, waiting for its writer
        self.shut = False  # its transport was shut down (the server stops): nothing left to linger for

    @property
    def writing(self) -> bool:
        """Waiting for the client to take what was written to it: busy, not idle."""
        return self.write_timeout.waiting

    def kick(self, reason: DisconnectReason) -> None:
        """Close it from the server's side, for ``reason`` (the first reason given stands)."""
        if self.close_reason is None:
            self.close_reason = reason
            self.state.status = ClientStatus.CLOSING
        self.scope.cancel()

    def shut_down(self) -> None:
        """The server stops: close it for ``server shutdown``. A plain socket gets its FIN at once and
        its loop ends as at the client's EOF: no cancellation (each costs about 0.1 ms, a second at
        10,000 clients) and no linger. A TLS one is kicked: its close_notify needs its task."""
        if self.close_reason is None:
            self.close_reason = DisconnectReason.SERVER_SHUTDOWN
            self.state.status = ClientStatus.CLOSING
        if self.transport.shut_down():
            self.shut = True
        else:
            self.scope.cancel()

    async def run(self, mode: ModeHandler, registrar: Registrar) -> None:
        """Serve the client with ``mode`` until it ends, retire it, then close its transport."""
        reason, error = DisconnectReason.SERVER_SHUTDOWN, ""  # kept if the server is cancelled from outside
        retired = False

        def retire() -> None:
            nonlocal retired
            retired = True
            gone = registrar.retire(self, reason, error)
            if not registrar.stopping:
                mode.left(self, gone)

        try:
            with self.scope:
                reason, error = await until_it_ends(mode.serve(self))
            if self.close_reason is not None:  # the server closed it: that is why it ended, whatever its loop saw
                reason, error = self.close_reason, ""
            retire()  # the client is gone for everyone from here; its socket may linger a moment
            if (self.close_reason is not None and not self.shut) or reason is DisconnectReason.FAULT:
                await self.transport.close_gracefully(SHUTDOWN_LINGER_SECONDS if registrar.stopping else LINGER_SECONDS)
            else:
                self.transport.close()
        finally:
            if not retired:  # cancelled from outside: no time to linger
                retire()
                self.transport.close()


async def until_it_ends(loop: Coroutine[Any, Any, Ended | Handoff]) -> Ended:
    """Run a client's loop to its end, and the loops it hands the client to: its own reason, or how it failed."""
    while True:
        try:
            ended = await loop
        except Exception as exc:
            failed = failure(exc)
            if failed is None:
                raise
            return failed
        if not isinstance(ended, Handoff):
            return ended
        loop = ended.loop


async def until_it_hands_off(loop: Coroutine[Any, Any, Ended | Handoff]) -> Ended | Handoff:
    """Run one loop (a task of a client's loop): its end, its handoff, or how it failed."""
    try:
        return await loop
    except Exception as exc:
        failed = failure(exc)
        if failed is None:
            raise
        return failed


def failure(exc: Exception) -> Ended | None:
    """How a client's loop ends when ``exc`` ends it: a socket error, a TLS error, a slow reader or a fault's end
    (None: not a client's failure, a bug)."""
    if isinstance(exc, FaultEnded):
        return DisconnectReason.FAULT, exc.why
    if isinstance(exc, SlowReader):
        return DisconnectReason.SLOW_READER, ""
    if isinstance(exc, OSError):
        return DisconnectReason.ERROR, describe_error(exc)
    if isinstance(exc, trio.BrokenResourceError):
        return DisconnectReason.ERROR, describe_tls_error(exc.__cause__)
    return None
