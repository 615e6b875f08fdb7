"""The echo server: one trio task per client, exact per-client counters, events out, commands in.

Knows nothing of any UI. The echo loop works on non-blocking stdlib sockets
with trio's low-level readiness waits: one scheduler yield per echoed chunk
(trio's SocketStream costs about three), which keeps it ahead of a bare
``serve_tcp`` echo even with accounting and events.

TLS clients take their own path (``_serve_tls_client``, ``_echo_tls``): a
handshake in the client's own task, then trio's ``SSLStream``. They share
everything else with plaintext clients: state, counters, events, commands,
the write lock, the idle timeout and the way a client is closed.

Each mode (``--mode``) has a loop of its own, chosen once per client
(``_mode_loop``): echo keeps its hot path (``_echo``) to itself; discard
(``_discard``) only reads; chat and broker (``_relay``) run a reader and a
writer per client, the writer draining the client's bounded ``Outbound``
queue (see ``tui_echo.server.relay``).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import math
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, assert_never

import trio

from tui_echo.server.access import AccessControl, ActiveBan, plain_host
from tui_echo.server.binding import open_listeners
from tui_echo.server.clients import ClientState, ClientStatus
from tui_echo.server.commands import Ban, Broadcast, Kick, KickAll, SendTo, ServerCommand, Shutdown, Unban
from tui_echo.server.config import Framing, Mode, ServerConfig
from tui_echo.server.events import (
    EVENT_DATA_BYTES,
    ClientConnected,
    ClientDisconnected,
    ConnectionRefused,
    DataAnswered,
    DataDiscarded,
    DataReceived,
    DataRelayed,
    DataSent,
    DisconnectReason,
    Peer,
    RefusalReason,
    ServerEvent,
    ServerListening,
    ServerNotice,
    ServerStopped,
    ServerTotals,
    describe_error,
)
from tui_echo.server.outbox import EventOutbox
from tui_echo.server.relay import ChatLines, Outbound, joined, left, operator_says, said
from tui_echo.server.refusals import SUMMARY_SECONDS, RefusalCounter
from tui_echo.server.rules import Responder, RuleBook, RuleHits
from tui_echo.server.tls import TlsSettings, describe_tls_error
from tui_echo.server.tls_stream import release, send_alert, send_session_tickets
from tui_echo.text import format_address, format_duration, format_size, plural, preview, printable
from tui_echo.server.subscription import Subscription

# accept() failures that mean "out of resources for now": wait ACCEPT_RETRY_SECONDS and try
# again (trio's serve_listeners does the same).
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
ACCEPT_RETRY_SECONDS = 0.1
ACCEPT_NOTICE_SECONDS = 5.0  # one "accept failed" notice per this long, not one per retry
# accept() failures about one connection that died in the queue or was refused by a
# firewall: skip it and accept the next. Trio's SocketListener ignores the same set.
_ACCEPT_SKIP_ERRNOS = {
    getattr(errno, name)
    for name in (
        "EPERM",
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ENOSR",
        "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT",
        "ETIMEDOUT",
        "ECONNRESET",
    )
    if hasattr(errno, name)
}
# Connections accepted per wake-up before the accept task yields. One per scheduler pass
# starved accepting under load (1000 busy clients: about 60 accepts/s); a batch costs
# about 20 us a connection, so 256 keep a pass under ~5 ms while 1000 arrivals take 4 passes.
ACCEPTS_PER_PASS = 256
_LINGER_SECONDS = 1.0  # how long a kicked client may take to close its side
_SHUTDOWN_LINGER_SECONDS = 0.5  # the same when the whole server stops (it exits within 2 s)
_STOP_DRAIN_SECONDS = 1.0  # how long a stopping server waits for a stalled consumer
TLS_NOTICE_SECONDS = 1.0  # failed TLS handshakes are reported at most once per this long, as one notice
RULES_SUMMARY_SECONDS = 10.0  # rule hits are summarised this often (when there were any), not logged one by one


class _Connection:
    """Server-private handles of one client, next to its public state."""

    __slots__ = (
        "state",
        "sock",
        "tls",
        "scope",
        "close_reason",
        "write_lock",
        "pending_sends",
        "write_timeout",
        "writing",
        "outbound",
    )

    def __init__(
        self,
        state: ClientState,
        sock: socket.socket,
        tls: trio.SSLStream[trio.SocketStream] | None,
        write_timeout: float | None,
    ) -> None:
        self.state = state
        self.sock = sock
        self.tls = tls  # the encrypted stream over ``sock``, for a TLS client
        self.scope = trio.CancelScope()
        self.close_reason: DisconnectReason | None = None  # set when the server closes it
        self.write_lock = trio.Lock()  # echo and operator sends never interleave bytes
        self.pending_sends = 0
        self.write_timeout = write_timeout
        self.writing = False  # waiting for the client to take its echo: busy, not idle
        self.outbound: Outbound | None = None  # chat and broker: what the others said, waiting for its writer


class _SlowReader(Exception):
    """The client took none of the bytes written to it for ``write_timeout`` seconds."""


async def _send_all(conn: _Connection, data: bytes | memoryview) -> None:
    """Write all of ``data``, counting each write in ``bytes_out`` as it happens.

    Only a write that has to wait pays for the write timeout: each wait for room
    in the client's socket may last ``write_timeout`` at most.
    """
    sock, state = conn.sock, conn.state
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            await _wait_for_reader(conn, trio.lowlevel.wait_writable(sock))
            continue
        state.bytes_out += sent
        view = view[sent:]


async def _tls_send_all(conn: _Connection, data: bytes | bytearray) -> None:
    """Write all of ``data`` over TLS; ``write_timeout`` bounds the whole write, as TLS hides partial progress."""
    assert conn.tls is not None
    await _wait_for_reader(conn, conn.tls.send_all(data))
    conn.state.bytes_out += len(data)


async def _wait_for_reader(conn: _Connection, write: Awaitable[object]) -> None:
    """Await ``write``, which waits for the client to read; past ``write_timeout`` raise _SlowReader.

    Meanwhile the client is busy, not idle (``writing``): the idle reaper leaves it alone.
    """
    conn.writing = True
    try:
        with trio.move_on_after(conn.write_timeout or math.inf) as waited:
            await write
    finally:
        conn.writing = False
    if waited.cancelled_caught:
        raise _SlowReader


def _write(conn: _Connection, data: bytes) -> Awaitable[None]:
    return _send_all(conn, data) if conn.tls is None else _tls_send_all(conn, data)


async def _receive(conn: _Connection, size: int) -> bytes:
    """The client's next bytes (``b""`` at its end), plain or TLS: how the modes other than echo read."""
    if conn.tls is not None:
        return bytes(await conn.tls.receive_some(size))  # a bytearray: deliveries must not change under a queue
    sock = conn.sock
    while True:
        try:
            data = sock.recv(size)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        await trio.lowlevel.checkpoint()  # a client that never pauses must not starve the rest
        return data


async def _until_it_ends(loop: Awaitable[tuple[DisconnectReason, str]]) -> tuple[DisconnectReason, str]:
    """Run a client's loop to its end: its own reason, or a socket error, a TLS error or a slow reader."""
    try:
        return await loop
    except _SlowReader:
        return DisconnectReason.SLOW_READER, ""
    except OSError as exc:
        return DisconnectReason.ERROR, describe_error(exc)
    except trio.BrokenResourceError as exc:
        return DisconnectReason.ERROR, describe_tls_error(exc.__cause__)


async def _close_gracefully(sock: socket.socket, linger: float) -> None:
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
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(sock)
    except OSError:
        pass
    finally:
        _close(sock)


async def _close_tls_gracefully(stream: trio.SSLStream[trio.SocketStream], sock: socket.socket, linger: float) -> None:
    """Send TLS's close_notify, then close the socket as ``_close_gracefully`` does, all within ``linger``.

    ``unwrap`` sends close_notify at once, then waits for the client's own,
    which it may never send: past the deadline the socket closes regardless.
    """
    deadline = trio.current_time() + linger
    # Broken by the cancelled echo, or an operator send is mid-write: close without it.
    with trio.move_on_at(deadline), contextlib.suppress(trio.BrokenResourceError, trio.BusyResourceError):
        await stream.unwrap()
    await _close_gracefully(sock, max(deadline - trio.current_time(), 0.0))


def _close(sock: socket.socket) -> None:
    trio.lowlevel.notify_closing(sock)  # wakes an operator send waiting on this socket
    sock.close()


class EchoServer:
    """A multi-client TCP echo server.

    ``listen()`` binds (raising ListenError), ``serve()`` runs until ``stop()``
    or a ``Shutdown`` command, or until cancelled. Events go to ``events``
    (closed when the server stops); commands come in on ``self.commands``.
    """

    def __init__(
        self,
        config: ServerConfig,
        events: trio.MemorySendChannel[ServerEvent],
        command_buffer: int = 256,
    ) -> None:
        self.config = config
        self._events = events
        self._outbox = EventOutbox(events, config.lifecycle_backlog)
        self.commands: trio.MemorySendChannel[ServerCommand]
        self.commands, self._commands_in = trio.open_memory_channel(command_buffer)
        self._listeners: list[socket.socket] = []
        self._connections: dict[int, _Connection] = {}
        self._ids = itertools.count(1)
        self._clients_nursery: trio.Nursery | None = None
        self._services_scope: trio.CancelScope | None = None
        self._stopping = False
        self._line_framing = config.framing is Framing.LINE
        self._access = AccessControl(config)
        self._refusals = RefusalCounter()
        self._refusals_held = trio.Event()  # set when refusals wait for a summary
        # Reply rules and their hit counts; None without rules, and then the plain echo serves every client.
        self._rule_book = RuleBook(config.rules) if config.rules else None
        # Totals of clients that already left.
        self._clients_total = 0
        self._clients_peak = 0
        self._done_messages = 0
        self._done_bytes_in = 0
        self._done_bytes_out = 0
        self._done_dropped_out = 0
        # TLS connections still in their handshake (each one's scope, cancelled when the server stops),
        # and failed handshakes: in all, and not yet reported in a notice.
        self._handshakes: set[trio.CancelScope] = set()
        self._tls_failed_total = 0
        self._tls_failed_unreported = 0
        self._tls_latest_failure = ""
        self._tls_failure_reported = trio.Event()  # set when failures are waiting for their notice
        self.addresses: tuple[Peer, ...] = ()
        # Deadlines run on trio's clock; events and client state show wall-clock times,
        # which are trio's clock plus this offset (set when serving starts).
        self._wall_offset = 0.0
        # Where consoles attach (the control socket), for the first event; set before serve().
        self.control_path = ""

    # ---- reading state -------------------------------------------------

    def clients(self) -> Iterator[ClientState]:
        """The live clients' state, exact at the moment of reading."""
        return (conn.state for conn in self._connections.values())

    def totals(self) -> ServerTotals:
        live = [conn.state for conn in self._connections.values()]
        return ServerTotals(
            clients_total=self._clients_total,
            clients_now=len(live),
            clients_peak=self._clients_peak,
            refused_total=self._refusals.total,
            messages_in=self._done_messages + sum(s.messages_in for s in live),
            bytes_in=self._done_bytes_in + sum(s.bytes_in for s in live),
            bytes_out=self._done_bytes_out + sum(s.bytes_out for s in live),
            events_skipped=self._outbox.dropped,
            tls_handshakes_failed=self._tls_failed_total,
            refused_by_reason=dict(self._refusals.by_reason),
            rule_hits=tuple(self._rule_book.hits) if self._rule_book is not None else (),
            dropped_out=self._done_dropped_out + sum(s.dropped_out for s in live),
        )

    def rules(self) -> tuple[RuleHits, ...]:
        """The reply rules in order, each with its exact hit count and last match."""
        return self._rule_book.table() if self._rule_book is not None else ()

    def bans(self) -> tuple[ActiveBan, ...]:
        """The banned addresses, soonest to end first. A ban whose ``until`` has passed is no longer in force."""
        return tuple(ActiveBan(host, until + self._wall_offset) for host, until in self._access.bans())

    # ---- subscribers (consoles) ----------------------------------------

    def subscribe(self) -> Subscription:
        """A bounded copy of every event from now on (``close()`` it when done).

        Read ``clients()`` and ``totals()`` in the same step, with no checkpoint
        between, and the events continue exactly from that snapshot.
        """
        subscription = Subscription(trio.current_time(), self._outbox.unsubscribe)
        self._outbox.subscribe(subscription)
        return subscription

    def notice(self, message: str) -> None:
        """Tell every consumer something, e.g. who issued a command on the control socket."""
        self._notice(message)

    # ---- running -------------------------------------------------------

    def listen(self) -> tuple[Peer, ...]:
        """Bind the listening sockets now (raises ListenError); returns the real addresses."""
        if not self._listeners:
            self._listeners = open_listeners(self.config.host, self.config.port)
            self.addresses = tuple(sock.getsockname()[:2] for sock in self._listeners)
        return self.addresses

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Stop accepting, close every client with reason ``server shutdown``, then end ``serve()``."""
        self._stopping = True
        if self._services_scope is not None:
            self._services_scope.cancel()

    def _wall_clock(self) -> float:
        return trio.current_time() + self._wall_offset

    async def serve(self, *, task_status: trio.TaskStatus[tuple[Peer, ...]] = trio.TASK_STATUS_IGNORED) -> None:
        self.listen()
        self._wall_offset = time.time() - trio.current_time()
        try:
            async with trio.open_nursery() as outer:
                outer.start_soon(self._outbox.pump)
                self._outbox.lifecycle(
                    ServerListening(
                        addresses=self.addresses, at=self._wall_clock(), config=self.config, control=self.control_path
                    )
                )
                async with trio.open_nursery() as clients:
                    self._clients_nursery = clients
                    with trio.CancelScope() as services_scope:
                        self._services_scope = services_scope
                        if self._stopping:
                            services_scope.cancel()
                        async with trio.open_nursery() as services:
                            for listener in self._listeners:
                                services.start_soon(self._accept_loop, listener)
                            services.start_soon(self._command_loop)
                            services.start_soon(self._summarise_refusals)
                            if self.config.idle_timeout is not None:
                                services.start_soon(self._reap_idle, self.config.idle_timeout)
                            if self.config.tls is not None:
                                services.start_soon(self._report_handshake_failures)
                            if self._rule_book is not None:
                                services.start_soon(self._summarise_rules, self._rule_book)
                            task_status.started(self.addresses)
                    self._admit_the_queue()
                    self._close_listeners()
                    for handshake in self._handshakes:
                        handshake.cancel()
                    self._report_handshake_failures_now()
                    for conn in list(self._connections.values()):
                        self._kick(conn, DisconnectReason.SERVER_SHUTDOWN)
                self._publish_refusal_summary()
                self._outbox.lifecycle(ServerStopped(at=self._wall_clock(), totals=self.totals()))
                with trio.move_on_after(_STOP_DRAIN_SECONDS):
                    await self._outbox.drain()
                outer.cancel_scope.cancel()
        finally:
            self._close_listeners()
            self._events.close()

    def _admit_the_queue(self) -> None:
        """Take in the connections still waiting in the listen queue, so that a stop closes them
        like every other client (FIN, then EOF) instead of the kernel resetting them."""
        for listener in self._listeners:
            with contextlib.suppress(OSError):  # BlockingIOError: the queue is empty
                while self._outbox.backlog < self.config.lifecycle_backlog:
                    self._accept_batch(listener)

    def _close_listeners(self) -> None:
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            trio.lowlevel.notify_closing(listener)
            listener.close()

    # ---- accepting -----------------------------------------------------

    async def _accept_loop(self, listener: socket.socket) -> None:
        next_notice = -float("inf")
        while True:
            await self._outbox.wait_for_room()
            try:
                self._accept_batch(listener)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(listener)
                continue
            except OSError as exc:
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                if trio.current_time() >= next_notice:
                    next_notice = trio.current_time() + ACCEPT_NOTICE_SECONDS
                    self._notice(f"accept failed: {exc.strerror}; new connections wait")
                await trio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            await trio.lowlevel.checkpoint()  # an accept flood must not starve the echo

    def _accept_batch(self, listener: socket.socket) -> None:
        """Admit up to ACCEPTS_PER_PASS waiting connections; raises BlockingIOError when none is left.

        Stops early when the lifecycle backlog is full, so that accept pauses as it should.
        """
        for _ in range(ACCEPTS_PER_PASS):
            if self._outbox.backlog >= self.config.lifecycle_backlog:
                return
            try:
                sock, address = listener.accept()
            except OSError as exc:
                if exc.errno in _ACCEPT_SKIP_ERRNOS:
                    continue
                raise
            self._admit(sock, address[:2])

    def _admit(self, sock: socket.socket, peer: Peer) -> None:
        """Admit or refuse one accepted connection, synchronously: the accept loop calls this for each."""
        host = plain_host(peer[0])  # once, here: the table, the log, the rules and bans all see plain IPv4
        if host is not peer[0]:
            peer = (host, peer[1])
        now = trio.current_time()
        reason = self._access.check(host, now, len(self._connections) + len(self._handshakes))
        if reason is not None:
            sock.close()
            self._refuse(next(self._ids), peer, now, reason)
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._clients_nursery is not None
        if self.config.tls is None:
            self._clients_nursery.start_soon(self._serve_client, self._register(sock, peer, None))
        else:
            self._clients_nursery.start_soon(self._serve_tls_client, sock, peer, self.config.tls)

    def _register(self, sock: socket.socket, peer: Peer, tls: trio.SSLStream[trio.SocketStream] | None) -> _Connection:
        """Make a connection a client: its id, state and ``ClientConnected``."""
        client_id = next(self._ids)
        now = self._wall_clock()
        state = ClientState(client_id=client_id, peer=peer, connected_at=now, last_activity=now)
        if tls is not None:
            state.tls_version = tls.version()
            cipher = tls.cipher()
            state.tls_cipher = cipher[0] if cipher else None
        conn = _Connection(state, sock, tls, self.config.write_timeout)
        if self.config.mode.relays:
            conn.outbound = Outbound(state, self.config.relay_queue_bytes)
            if self.config.mode is Mode.CHAT:
                self._offer_to_others(None, joined(client_id, peer))
        self._connections[client_id] = conn
        self._access.admitted(peer[0])
        self._clients_total += 1
        self._clients_peak = max(self._clients_peak, len(self._connections))
        self._outbox.lifecycle(
            ClientConnected(
                client_id=client_id, peer=peer, at=now, tls_version=state.tls_version, tls_cipher=state.tls_cipher
            )
        )
        return conn

    # ---- TLS -----------------------------------------------------------

    async def _serve_tls_client(self, sock: socket.socket, peer: Peer, tls: TlsSettings) -> None:
        """Handshake (in this task: accepting never waits for it), then serve the client like any other.

        A connection that fails its handshake or takes longer than the
        handshake timeout never becomes a client: it is counted, and reported
        in a notice at most once a second, whatever the number.
        """
        stream = trio.SSLStream(
            trio.SocketStream(trio.socket.from_stdlib_socket(sock)),
            tls.context,
            server_side=True,
            https_compatible=True,  # a client that closes without close_notify has simply closed
        )
        conn = None
        failure: str | None = None
        try:
            with trio.CancelScope() as handshake:  # cancelled when the server stops
                self._handshakes.add(handshake)
                try:
                    with trio.move_on_after(tls.handshake_timeout) as timer:
                        await stream.do_handshake()
                    failure = f"no handshake within {tls.handshake_timeout:g} s" if timer.cancelled_caught else None
                except trio.BrokenResourceError as exc:
                    failure = describe_tls_error(exc.__cause__)
                    send_alert(stream, sock)  # e.g. protocol_version to a TLS 1.0 client, as a plain ssl server does
                finally:
                    self._handshakes.discard(handshake)
            if failure is not None:
                self._handshake_failed(peer, failure)
            elif not self._stopping:
                send_session_tickets(stream, sock)  # so that a client's Nagle never waits for our delayed ACK
                conn = self._register(sock, peer, stream)
        finally:
            if conn is None:
                release(stream)  # freed now, not at the next full garbage collection
                _close(sock)
        if conn is not None:
            await self._serve_client(conn)

    def _handshake_failed(self, peer: Peer, why: str) -> None:
        self._tls_failed_total += 1
        self._tls_failed_unreported += 1
        self._tls_latest_failure = f"{format_address(peer)}: {why}"
        self._tls_failure_reported.set()

    async def _report_handshake_failures(self) -> None:
        """One notice for the first failure, then at most one per TLS_NOTICE_SECONDS with the count."""
        while True:
            await self._tls_failure_reported.wait()
            self._report_handshake_failures_now()
            await trio.sleep(TLS_NOTICE_SECONDS)

    def _report_handshake_failures_now(self) -> None:
        count, self._tls_failed_unreported = self._tls_failed_unreported, 0
        self._tls_failure_reported = trio.Event()
        if count == 1:
            self._notice(f"TLS handshake failed: {self._tls_latest_failure}")
        elif count > 1:
            self._notice(
                f"{plural(count, 'TLS handshake')} failed (latest {self._tls_latest_failure}; "
                f"{self._tls_failed_total} in all)"
            )

    async def _echo_tls(self, conn: _Connection) -> tuple[DisconnectReason, str]:
        """Echo over TLS until the peer closes. Counts plaintext application bytes, as the plain echo does."""
        stream = conn.tls
        assert stream is not None
        state = conn.state
        size = self.config.recv_size
        while True:
            data = await stream.receive_some(size)
            if not data:
                return DisconnectReason.CLOSED_BY_PEER, ""
            now = trio.current_time()
            length = len(data)
            messages = data.count(b"\n") if self._line_framing else 1
            state.last_activity = now + self._wall_offset
            state.bytes_in += length
            state.messages_in += messages
            async with conn.write_lock:  # SSLStream allows one writer: the echo or an operator send
                await _tls_send_all(conn, data)
            if not self._outbox.skip_if_full(now):
                self._outbox.data(self._received(state, data, messages, now), now)

    def _received(
        self,
        state: ClientState,
        data: bytes | bytearray,
        messages: int,
        now: float,
        kind: Callable[..., DataReceived] = DataReceived,
        **more: object,
    ) -> DataReceived:
        """The event for one message off the echo's hot path: ``kind`` is DataReceived or one of its subclasses."""
        return kind(
            client_id=state.client_id,
            data=bytes(data[:EVENT_DATA_BYTES]),
            size=len(data),
            at=now + self._wall_offset,
            messages=messages,
            messages_in=state.messages_in,
            bytes_in=state.bytes_in,
            bytes_out=state.bytes_out,
            **more,
        )

    def _refuse(self, client_id: int, peer: Peer, now: float, reason: RefusalReason) -> None:
        """Count a refusal; publish it on its own only while refusals are few (see server/refusals.py)."""
        if self._refusals.refused(reason, now):
            self._outbox.lifecycle(
                ConnectionRefused(client_id=client_id, peer=peer, at=now + self._wall_offset, reason=reason)
            )
        elif not self._refusals_held.is_set():
            self._refusals_held.set()

    async def _summarise_refusals(self) -> None:
        """One ``RefusalsSummary`` per SUMMARY_SECONDS while refusals are held; asleep otherwise."""
        while True:
            await self._refusals_held.wait()
            await trio.sleep(SUMMARY_SECONDS)
            self._publish_refusal_summary()

    def _publish_refusal_summary(self) -> None:
        self._refusals_held = trio.Event()
        summary = self._refusals.summary(self._wall_clock(), trio.current_time())
        if summary is not None:
            self._outbox.lifecycle(summary)

    # ---- one client ----------------------------------------------------

    async def _serve_client(self, conn: _Connection) -> None:
        reason, error = DisconnectReason.SERVER_SHUTDOWN, ""  # kept if the server is cancelled from outside
        closed = False
        try:
            with conn.scope:
                reason, error = await _until_it_ends(self._mode_loop(conn))
            if conn.scope.cancelled_caught:
                reason, error = conn.close_reason or DisconnectReason.SERVER_SHUTDOWN, ""
            # The client is gone for everyone from here; its socket may linger a moment.
            self._retire(conn, reason, error)
            closed = True
            if conn.close_reason is not None:
                linger = _SHUTDOWN_LINGER_SECONDS if self._stopping else _LINGER_SECONDS
                if conn.tls is None:
                    await _close_gracefully(conn.sock, linger)
                else:
                    await _close_tls_gracefully(conn.tls, conn.sock, linger)
            else:
                _close(conn.sock)
        finally:
            if not closed:  # cancelled from outside: no time to linger
                self._retire(conn, reason, error)
                _close(conn.sock)

    def _mode_loop(self, conn: _Connection) -> Coroutine[Any, Any, tuple[DisconnectReason, str]]:
        """The client's loop for the server's mode; each returns the disconnect reason and error text."""
        mode = self.config.mode
        if mode is Mode.ECHO and self._rule_book is not None:
            return self._echo_with_rules(conn, self._rule_book)
        if mode is Mode.ECHO:
            return self._echo(conn) if conn.tls is None else self._echo_tls(conn)
        if mode is Mode.DISCARD:
            return self._discard(conn)
        return self._relay(conn)

    async def _echo(self, conn: _Connection) -> tuple[DisconnectReason, str]:
        """Echo until the peer closes; returns the disconnect reason and error text. The hot path."""
        sock = conn.sock
        state = conn.state
        recv = sock.recv
        send = sock.send
        size = self.config.recv_size
        line_framing = self._line_framing
        publish = self._outbox.data
        skip_if_full = self._outbox.skip_if_full
        write_lock = conn.write_lock
        wait_readable = trio.lowlevel.wait_readable
        checkpoint = trio.lowlevel.checkpoint
        clock = trio.current_time
        wall_offset = self._wall_offset
        client_id = state.client_id
        yielded = True
        while True:
            try:
                data = recv(size)
            except BlockingIOError:
                await wait_readable(sock)
                yielded = True
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
                    await _send_all(conn, data)
                yielded = True
            else:
                try:
                    sent = send(data)
                except BlockingIOError:
                    sent = 0
                state.bytes_out += sent
                if sent < length:  # the client reads slower than it writes: wait for it
                    async with write_lock:
                        await _send_all(conn, memoryview(data)[sent:])
                    yielded = True
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
            if not yielded:
                await checkpoint()  # a client that never pauses must not starve the rest
            yielded = False

    # ---- echo with reply rules -------------------------------------------

    async def _echo_with_rules(self, conn: _Connection, book: RuleBook) -> tuple[DisconnectReason, str]:
        """Echo, except that a message a rule matches gets the rule's reply instead. Plain and TLS clients alike.

        A loop of its own, so that the plain echo (``_echo``) pays nothing for rules.
        """
        state = conn.state
        size = self.config.recv_size
        wall_offset = self._wall_offset
        line_framing = self._line_framing
        responder = Responder(book, state.client_id, state.peer, line_framing)
        while True:
            data = await _receive(conn, size)
            now = trio.current_time()
            if not data:
                await self._reply(conn, responder.finish(state.messages_in, now + wall_offset))
                return DisconnectReason.CLOSED_BY_PEER, ""
            messages = data.count(b"\n") if line_framing else 1
            count = state.messages_in
            state.last_activity = now + wall_offset
            state.bytes_in += len(data)
            state.messages_in += messages
            hits_before = sum(book.hits)
            for batch in responder.respond(data, count, now + wall_offset):
                await self._reply(conn, batch)
            answered = sum(book.hits) - hits_before  # a rule's answer is a line apart from the echo
            if book.first_hits:
                self._announce_first_hits(book)
            if not self._outbox.skip_if_full(now):
                if answered:
                    event = self._received(state, data, messages, now, DataAnswered, answered=answered)
                else:
                    event = self._received(state, data, messages, now)
                self._outbox.data(event, now)

    # ---- discard, chat and broker ------------------------------------------

    def _count_in(self, state: ClientState, data: bytes) -> float:
        """Count received bytes (messages are counted as each is handled); returns trio's time."""
        now = trio.current_time()
        state.last_activity = now + self._wall_offset
        state.bytes_in += len(data)
        return now

    async def _discard(self, conn: _Connection) -> tuple[DisconnectReason, str]:
        """RFC 863: read and count, send nothing."""
        state = conn.state
        size = self.config.recv_size
        line_framing = self._line_framing
        while True:
            data = await _receive(conn, size)
            if not data:
                return DisconnectReason.CLOSED_BY_PEER, ""
            now = self._count_in(state, data)
            messages = data.count(b"\n") if line_framing else 1
            state.messages_in += messages
            if not self._outbox.skip_if_full(now):
                self._outbox.data(self._received(state, data, messages, now, DataDiscarded), now)

    async def _relay(self, conn: _Connection) -> tuple[DisconnectReason, str]:
        """Chat and broker: the client's reader and its writer side by side; the first to end ends both.

        The reader never waits for any receiver (it only appends to their queues), and the writer
        never waits for anyone but this client.
        """
        ended: list[tuple[DisconnectReason, str]] = []
        async with trio.open_nursery() as nursery:

            async def run(loop: Callable[[_Connection], Awaitable[tuple[DisconnectReason, str]]]) -> None:
                ended.append(await _until_it_ends(loop(conn)))
                nursery.cancel_scope.cancel()

            nursery.start_soon(run, self._relay_reads)
            nursery.start_soon(run, self._write_outbound)
        return ended[0]

    async def _relay_reads(self, conn: _Connection) -> tuple[DisconnectReason, str]:
        state = conn.state
        size = self.config.recv_size
        chat = ChatLines() if self.config.mode is Mode.CHAT else None
        line_framing = self._line_framing
        book = self._rule_book
        responder = None if book is None else Responder(book, state.client_id, state.peer, line_framing=False)
        while True:
            data = await _receive(conn, size)
            if not data:
                if chat is not None and (rest := chat.rest()):  # a last line without its newline is said too
                    self._relay_message(conn, rest, 1, trio.current_time(), responder)
                return DisconnectReason.CLOSED_BY_PEER, ""
            now = self._count_in(state, data)
            if chat is None:
                self._relay_message(conn, data, data.count(b"\n") if line_framing else 1, now, responder)
            else:
                for line in chat.lines(data):
                    self._relay_message(conn, line, 1, now, responder)

    def _relay_message(
        self, conn: _Connection, message: bytes, messages: int, now: float, responder: Responder | None
    ) -> None:
        """Pass one message (a chat line, a broker chunk) on to every other client, and count it.

        A message a reply rule answers goes back to its sender instead (through the sender's own
        queue, so the reader never waits), and is not relayed.
        """
        state = conn.state
        if responder is not None:
            reply = responder.answer(message, state.messages_in, now + self._wall_offset)
            if reply is not None:
                state.messages_in += messages
                if conn.outbound is not None:
                    conn.outbound.offer(reply)
                if self._rule_book is not None and self._rule_book.first_hits:
                    self._announce_first_hits(self._rule_book)
                if not self._outbox.skip_if_full(now):
                    event = self._received(state, message, messages, now, DataAnswered, answered=messages)
                    self._outbox.data(event, now)
                return
        state.messages_in += messages
        mode = self.config.mode
        delivery = said(state.client_id, message) if mode is Mode.CHAT else message
        recipients, dropped = self._offer_to_others(conn, delivery)
        if not self._outbox.skip_if_full(now):
            event = self._received(
                state, message, messages, now, DataRelayed, mode=mode, recipients=recipients, dropped=dropped
            )
            self._outbox.data(event, now)

    def _offer_to_others(self, sender: _Connection | None, delivery: bytes) -> tuple[int, int]:
        """Queue one delivery for every client but ``sender``; returns how many took it and how many had no room."""
        recipients = dropped = 0
        for other in self._connections.values():
            outbound = other.outbound
            if other is sender or outbound is None or other.close_reason is not None:
                continue
            if outbound.offer(delivery):
                recipients += 1
                continue
            dropped += 1
            if not outbound.warned:
                outbound.warned = True
                self._notice(
                    f"#{other.state.client_id} is not reading: its queue is full ({format_size(outbound.limit)}), "
                    "so what is sent to it is dropped and counted"
                )
        return recipients, dropped

    async def _write_outbound(self, conn: _Connection) -> tuple[DisconnectReason, str]:
        """Chat and broker: write the client's queued deliveries, whole, a batch at a time."""
        outbound = conn.outbound
        assert outbound is not None
        while True:
            data, count = await outbound.batch()
            async with conn.write_lock:  # an operator send goes between two deliveries, never inside one
                await _write(conn, data)
            outbound.written(count)

    async def _reply(self, conn: _Connection, data: bytes) -> None:
        """Write a rule's reply whole, after any operator send being written."""
        if data:
            async with conn.write_lock:
                await _write(conn, data)

    def _announce_first_hits(self, book: RuleBook) -> None:
        """A notice for the first hit of each rule; later hits go into the summaries."""
        for rule, match, client_id in book.first_hits:
            self._notice(f"rule {rule.number} ({printable(rule.match)}) first hit, by #{client_id}: {preview(match)}")
        book.first_hits.clear()

    async def _summarise_rules(self, book: RuleBook) -> None:
        """Every RULES_SUMMARY_SECONDS, the hits since the last summary, if there were any."""
        reported = list(book.hits)
        while True:
            await trio.sleep(RULES_SUMMARY_SECONDS)
            hits = list(book.hits)
            news = [
                f"rule {rule.number} +{now - before} ({now} in all)"
                for rule, now, before in zip(book.rules, hits, reported, strict=True)
                if now != before
            ]
            reported = hits
            if news:
                self._notice(f"rule hits in the last {RULES_SUMMARY_SECONDS:g} s: {', '.join(news)}")

    def _retire(self, conn: _Connection, reason: DisconnectReason, error: str) -> None:
        state = conn.state
        del self._connections[state.client_id]
        self._access.left(state.peer[0])
        if conn.outbound is not None:
            conn.outbound.abandon()
        self._done_messages += state.messages_in
        self._done_bytes_in += state.bytes_in
        self._done_bytes_out += state.bytes_out
        self._done_dropped_out += state.dropped_out
        gone = ClientDisconnected(
            client_id=state.client_id,
            peer=state.peer,
            at=self._wall_clock(),
            reason=reason,
            error=error,
            connected_at=state.connected_at,
            messages_in=state.messages_in,
            bytes_in=state.bytes_in,
            bytes_out=state.bytes_out,
            dropped_out=state.dropped_out,
        )
        self._outbox.lifecycle(gone)
        if self.config.mode is Mode.CHAT and not self._stopping:
            self._offer_to_others(None, left(state.client_id, gone.why))

    def _kick(self, conn: _Connection, reason: DisconnectReason) -> None:
        if conn.close_reason is None:
            conn.close_reason = reason
            conn.state.status = ClientStatus.CLOSING
        conn.scope.cancel()

    async def _reap_idle(self, timeout: float) -> None:
        """Kick clients idle for ``timeout``: one task sleeping until the earliest deadline, no timer per chunk."""
        while True:
            now = self._wall_clock()  # last_activity is wall clock: compare like with like
            next_check = now + timeout  # a client that connects later expires later than this
            for conn in list(self._connections.values()):
                if conn.close_reason is not None or conn.writing:
                    continue  # a client whose echo waits is busy: the write timeout covers it
                expires = conn.state.last_activity + timeout
                if expires <= now:
                    self._kick(conn, DisconnectReason.IDLE_TIMEOUT)
                else:
                    next_check = min(next_check, expires)
            await trio.sleep_until(next_check - self._wall_offset)

    # ---- commands ------------------------------------------------------

    async def _command_loop(self) -> None:
        async for command in self._commands_in:
            self.apply(command)

    def apply(self, command: ServerCommand) -> None:
        """Carry out one command now (the command channel calls this for you)."""
        match command:
            case Kick(client_id):
                conn = self._connections.get(client_id)
                if conn is None:
                    self._notice(f"kick: no client #{client_id}")
                else:
                    self._kick(conn, DisconnectReason.KICKED)
            case KickAll():
                for conn in list(self._connections.values()):
                    self._kick(conn, DisconnectReason.KICKED)
            case SendTo(client_id, data):
                conn = self._connections.get(client_id)
                if conn is None:
                    self._notice(f"send: no client #{client_id}")
                else:
                    chat = self.config.mode is Mode.CHAT  # the operator speaks in the chat's own form
                    self._queue_send(conn, operator_says(data, private=True) if chat else data)
            case Broadcast(data):
                if not self._connections:
                    self._notice("broadcast: no clients connected")
                if self.config.mode is Mode.CHAT:
                    data = operator_says(data, private=False)
                for conn in list(self._connections.values()):
                    self._queue_send(conn, data)
            case Ban(client_id):
                conn = self._connections.get(client_id)
                if conn is None:
                    self._notice(f"ban: no client #{client_id}")
                else:
                    self._ban(conn.state.peer[0])
            case Unban(address):
                host = plain_host(address)
                if self._access.unban(host):
                    self._notice(f"ban on {host} lifted")
                else:
                    self._notice(f"unban: {host} is not banned")
            case Shutdown():
                self.stop()
            case _:
                assert_never(command)

    def _ban(self, host: str) -> None:
        """Refuse ``host`` for the configured time and close every client from it."""
        seconds = self.config.ban_seconds
        if not self._access.ban(host, seconds, trio.current_time()):
            self._notice(f"ban on {host} refused: the ban list is full")
            return
        closed = 0
        for conn in list(self._connections.values()):
            if conn.state.peer[0] == host and conn.close_reason is None:
                self._kick(conn, DisconnectReason.BANNED)
                closed += 1
        self._notice(f"banned {host} for {format_duration(seconds)}; closed {plural(closed, 'client')}")

    def _notice(self, message: str) -> None:
        self._outbox.lifecycle(ServerNotice(message=message, at=self._wall_clock()))

    def _queue_send(self, conn: _Connection, data: bytes) -> None:
        if conn.close_reason is not None:
            return
        if conn.pending_sends >= self.config.max_pending_sends:
            self._notice(
                f"send to #{conn.state.client_id} refused: {conn.pending_sends} sends already waiting "
                "(the client is not reading)"
            )
            return
        conn.pending_sends += 1
        assert self._clients_nursery is not None
        self._clients_nursery.start_soon(self._deliver, conn, data)

    async def _deliver(self, conn: _Connection, data: bytes) -> None:
        state = conn.state
        try:
            async with conn.write_lock:
                if state.status is not ClientStatus.CONNECTED or self._connections.get(state.client_id) is not conn:
                    return  # kicked, or gone while this send waited its turn
                await _write(conn, data)
        except _SlowReader:
            self._kick(conn, DisconnectReason.SLOW_READER)
            return
        except (OSError, trio.ClosedResourceError, trio.BrokenResourceError):
            return  # the client's own task reports why it went away
        finally:
            conn.pending_sends -= 1
        now = trio.current_time()
        self._outbox.data(
            DataSent(
                client_id=state.client_id,
                data=data[:EVENT_DATA_BYTES],
                size=len(data),
                at=now + self._wall_offset,
                bytes_out=state.bytes_out,
            ),
            now,
        )
