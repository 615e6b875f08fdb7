"""Echo (``--mode echo``, no reply rules): send every chunk back to its sender. The hot path.

A client whose transport is exactly a plain socket is echoed by the server's
readiness loop (``echo_reactor``: one level-triggered epoll set, one recv
and one send per ready socket, no task switch per chunk); its own task,
``_echo_socket``, waits there and wakes only for an operator send, a slow
reader, a fault or the end. Anything else (TLS, a recording tap) runs
``_echo_stream`` over the ``Transport`` interface, and a client with faults
runs ``echo_with_faults``. A binary framing (``--framing stx-etx``,
``len:…``) runs ``_echo_frames``: the echo is the same, the messages are
frames. Every loop checks once per chunk that its transport is still the
client's: a fault set meanwhile replaced it, and they hand the client over.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import trio

from tui_echo.server.connection import Connection, Ended, Handoff, ModeHandler
from tui_echo.server.events import DisconnectReason
from tui_echo.server.context import Context
from tui_echo.server.fault_transport import FaultTransport
from tui_echo.server.fault_echo import echo_with_faults
from tui_echo.server.echo_reactor import EchoReactor, Woken
from tui_echo.server.transport import PlainTransport


class EchoMode(ModeHandler):
    def __init__(self, context: Context) -> None:
        self._context = context
        self._reactor = EchoReactor(context)

    def serve(self, conn: Connection) -> Coroutine[Any, Any, Ended | Handoff]:
        transport = conn.transport
        if type(transport) is FaultTransport:
            return echo_with_faults(self._context, conn, self.serve)
        if self._context.binary_framing:
            return self._echo_frames(conn)
        if type(transport) is PlainTransport:
            return self._echo_socket(conn, transport)
        return self._echo_stream(conn)

    async def _echo_socket(self, conn: Connection, transport: PlainTransport) -> Ended | Handoff:
        """Echo until the peer closes: the readiness loop echoes and counts each chunk, and wakes this task
        only for what it must do itself (``echo_reactor``)."""
        while True:
            woken = await self._reactor.serve(conn, transport)
            if woken is Woken.CLOSED:
                return DisconnectReason.CLOSED_BY_PEER, ""
            if woken is Woken.MOVED:  # faults set: the fault-aware loop takes over
                return Handoff(self.serve(conn))
            # An operator send is being written, or the client reads slower than it writes (the write
            # timeout applies): the chunk's event comes once its echo is written.
            async with conn.write_lock:
                await transport.send_all(woken.rest)
            self._context.publish(conn.state, woken.chunk, woken.messages, woken.now)

    async def _echo_stream(self, conn: Connection) -> Ended | Handoff:
        """Echo over any transport (TLS: counts plaintext application bytes, as the plain echo does).
        The names it uses on every chunk are locals here too: a TLS echo is not free either."""
        transport = conn.transport
        receive, send_all = transport.receive, transport.send_all
        state = conn.state
        write_lock = conn.write_lock
        context = self._context
        size = context.config.recv_size
        line_framing = context.line_framing
        wall_offset = context.clock.offset
        publish = context.publish
        clock = trio.current_time
        while True:
            if conn.transport is not transport:  # faults set: the fault-aware loop takes over
                return Handoff(self.serve(conn))
            data = await receive(size)
            if not data:
                return DisconnectReason.CLOSED_BY_PEER, ""
            now = clock()
            messages = data.count(b"\n") if line_framing else 1
            state.last_activity = now + wall_offset
            state.bytes_in += len(data)
            state.messages_in += messages
            async with write_lock:  # SSLStream allows one writer: the echo or an operator send
                await send_all(data)
            publish(state, data, messages, now)
            del data  # not kept while the next receive waits (see _echo_socket)

    async def _echo_frames(self, conn: Connection) -> Ended | Handoff:
        """A binary framing: each chunk goes back at once, as it came; a message, and its event, is a frame.
        Under faults the fault-aware loop counts chunks, not frames; a frame the hand-over cuts is reported cut."""
        transport = conn.transport
        receive, send_all = transport.receive, transport.send_all
        state = conn.state
        write_lock = conn.write_lock
        context = self._context
        size = context.config.recv_size
        framer = context.framer()
        feed, report = framer.feed, context.pieces
        while True:
            if conn.transport is not transport:  # faults set: the fault-aware loop takes over
                if (rest := framer.rest()) is not None:  # a frame the hand-over cuts
                    report(state, [rest], trio.current_time())
                return Handoff(self.serve(conn))
            data = await receive(size)
            if not data:
                if (rest := framer.rest()) is not None:  # a frame the client never finished
                    report(state, [rest], trio.current_time())
                return DisconnectReason.CLOSED_BY_PEER, ""
            now = context.arrived(state, data)
            async with write_lock:
                await send_all(data)
            report(state, feed(data), now, buffered=framer.buffered)
            del data  # not kept while the next receive waits (see _echo_socket)
