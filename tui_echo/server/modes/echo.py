"""Echo (``--mode echo``, no reply rules): send every chunk back to its sender. The hot path.

A client whose transport is exactly a plain socket runs ``_echo_socket``: the
socket itself, non-blocking, with trio's low-level readiness waits, every
name it needs hoisted into a local, one scheduler yield per chunk (trio's
SocketStream costs about three), the next recv tried after the others have
had their turn (a readiness wait only when it finds nothing), and no event
built while the consumer has no room. With ``data_event_rate`` (the command
line's server) and no console attached, a busy client's chunks get events
only as its sample allows, plus the last before each pause: the consumers
show no more than that and count from the running totals, and building
and logging an event for every chunk cost more than the echo itself.
Anything else (TLS, a recording tap) runs ``_echo_stream`` over the
``Transport`` interface, and a client with faults runs ``echo_with_faults``.
A binary framing (``--framing stx-etx``, ``len:…``) runs ``_echo_frames``:
the echo is the same, the messages are frames. Every loop checks once per
chunk that its transport is still the client's: a fault set meanwhile
replaced it, and they hand the client over.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import trio

from tui_echo.ratelimit import TokenBucket
from tui_echo.server.connection import Connection, Ended, Handoff, ModeHandler
from tui_echo.server.events import EVENT_DATA_BYTES, DataReceived, DisconnectReason
from tui_echo.server.context import Context
from tui_echo.server.fault_transport import FaultTransport
from tui_echo.server.fault_echo import echo_with_faults
from tui_echo.server.transport import PlainTransport


class EchoMode(ModeHandler):
    def __init__(self, context: Context) -> None:
        self._context = context

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
        """Echo until the peer closes. Per chunk: a recv, a send, the counts, and an event if there is room
        (with ``data_event_rate`` and no console attached: if the client's sample allows, or it is the last
        chunk before a pause)."""
        sock = transport.sock
        state = conn.state
        recv = sock.recv
        send = sock.send
        send_all = transport.send_all
        context = self._context
        size = context.config.recv_size
        line_framing = context.line_framing
        publish = context.outbox.data
        skip_if_full = context.outbox.skip_if_full
        write_lock = conn.write_lock
        wait_readable = trio.lowlevel.wait_readable
        checkpoint = trio.lowlevel.checkpoint
        clock = trio.current_time
        wall_offset = context.clock.offset
        client_id = state.client_id
        outbox = context.outbox
        rate = context.config.data_event_rate
        sample = None if rate is None else TokenBucket(rate, rate, clock()).take
        # The start, size, message count and time of the last chunk the sample left out, until the next chunk
        # or a pause: a pause publishes it, so that the consumers' running totals catch up with a client that
        # went quiet (the rest of a busy client's are caught up by its next sampled event, a second at most).
        unsent: bytes | None = None
        unsent_size = unsent_messages = 0
        unsent_at = 0.0
        while True:
            if conn.transport is not transport:  # faults set: the fault-aware loop takes over
                return Handoff(self.serve(conn))
            try:
                data = recv(size)
            except BlockingIOError:
                if unsent is not None:
                    context.publish(state, unsent, unsent_messages, unsent_at, size=unsent_size)
                    unsent = None
                await wait_readable(sock)
                continue
            if not data:
                return DisconnectReason.CLOSED_BY_PEER, ""
            now = clock()
            length = len(data)
            messages = data.count(b"\n") if line_framing else 1
            state.last_activity = now + wall_offset
            state.bytes_in += length
            state.messages_in += messages
            if write_lock.locked():  # an operator send is being written: queue behind it
                async with write_lock:
                    await send_all(data)
            else:
                try:
                    sent = send(data)
                except BlockingIOError:
                    sent = 0
                state.bytes_out += sent
                if sent < length:  # the client reads slower than it writes: wait for it
                    async with write_lock:
                        await send_all(memoryview(data)[sent:])
            if sample is not None and not outbox.subscribers and not sample(now):
                unsent = data if length <= EVENT_DATA_BYTES else data[:EVENT_DATA_BYTES]
                unsent_size, unsent_messages, unsent_at = length, messages, now
            else:
                unsent = None
                if not skip_if_full(now):
                    publish(
                        DataReceived(
                            client_id=client_id,
                            data=data if length <= EVENT_DATA_BYTES else data[:EVENT_DATA_BYTES],
                            size=length,
                            at=now + wall_offset,
                            messages=messages,
                            messages_in=state.messages_in,
                            bytes_in=state.bytes_in,
                            bytes_out=state.bytes_out,
                        ),
                        now,
                    )
            # Let every other ready client run before the next recv: this loop's one yield per chunk, so
            # that a client that never pauses cannot starve the rest. By the time this task runs again its
            # client has usually answered, so the recv succeeds without a readiness wait (trio re-arms
            # epoll and parks the task for each one: measured 1.5x the CPU per message at 100 busy
            # clients); when it has not, the recv's EAGAIN sends the loop to wait_readable above.
            # The last chunk is not kept while the client is idle: an idle connection costs the same
            # whether it ever sent 64 KiB or nothing.
            data = b""
            await checkpoint()

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
