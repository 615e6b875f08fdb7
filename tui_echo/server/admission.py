"""Who gets in: the accept loop, the admission rules, refusals, and the TLS handshake.

``Admission.serve`` accepts on every listener in batches, decides each
connection synchronously (``AccessControl.check``: bans, allow/deny, accept
rate, the client cap, the per-address cap) and either refuses it (counted by
reason, published one by one only while refusals are few) or makes it a
client: a plain connection at once, a TLS one after its handshake, which runs
in the client's own task so that accepting never waits for it. A connection
still in its handshake counts toward ``--max-clients``.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from functools import partial

import trio

from tui_echo.server.access import AccessControl, plain_host
from tui_echo.server.connection import ModeHandler
from tui_echo.server.context import Context
from tui_echo.net import Peer, format_address
from tui_echo.server.events import ConnectionRefused, RefusalReason
from tui_echo.server.faulting import Faulting
from tui_echo.server.notices import Paced
from tui_echo.server.refusals import SUMMARY_SECONDS, RefusalCounter
from tui_echo.server.tls import TlsSettings, describe_tls_error
from tui_echo.server.tls_stream import release, send_alert, send_session_tickets
from tui_echo.server.transport import PlainTransport, TlsTransport, close_socket
from tui_echo.text import plural

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
TLS_NOTICE_SECONDS = 1.0  # failed TLS handshakes are reported at most once per this long, as one notice


class Admission:
    def __init__(self, context: Context, access: AccessControl, mode: ModeHandler, faulting: Faulting) -> None:
        self._config, self._registry, self._outbox = context.config, context.registry, context.outbox
        self._clock, self._notices = context.clock, context.notices
        self._access = access
        self._mode = mode
        self._faulting = faulting  # --fault: given to new clients as they come in
        self.clients: trio.Nursery | None = None  # where each client's task runs; set before serving
        self.refusals = RefusalCounter()
        self.refusal_summaries = Paced(SUMMARY_SECONDS, self._publish_refusals, at_once=False)
        # TLS connections still in their handshake (each one's scope, cancelled when the server stops),
        # and failed handshakes: in all, and not yet reported in a notice.
        self._handshakes: set[trio.CancelScope] = set()
        self.tls_failed_total = 0
        self._tls_failed_unreported = 0
        self._tls_latest_failure = ""
        self.tls_failures = Paced(TLS_NOTICE_SECONDS, self._report_tls_failures, at_once=True)

    async def serve(self, listeners: list[socket.socket]) -> None:
        """Accept on every listener, and report refusals and TLS failures as they come, until cancelled."""
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener)
            nursery.start_soon(self.refusal_summaries.run)
            if self._config.tls is not None:
                nursery.start_soon(self.tls_failures.run)

    def stop(self, listeners: list[socket.socket]) -> None:
        """At the stop: take in what waits in the listen queues (so that a stop closes them like every
        other client, FIN then EOF, instead of the kernel resetting them), end every handshake, and
        report the failures not yet reported."""
        for listener in listeners:
            with contextlib.suppress(OSError):  # BlockingIOError: the queue is empty
                while self._outbox.backlog < self._config.lifecycle_backlog:
                    self._accept_batch(listener)
        for handshake in self._handshakes:
            handshake.cancel()
        self.tls_failures.report_now()

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
                    self._notices.say(f"accept failed: {exc.strerror}; new connections wait")
                await trio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            await trio.lowlevel.checkpoint()  # an accept flood must not starve the echo

    def _accept_batch(self, listener: socket.socket) -> None:
        """Admit up to ACCEPTS_PER_PASS waiting connections; raises BlockingIOError when none is left.

        Stops early when the lifecycle backlog is full, so that accept pauses as it should.
        """
        for _ in range(ACCEPTS_PER_PASS):
            if self._outbox.backlog >= self._config.lifecycle_backlog:
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
        reason = self._access.check(host, now, len(self._registry) + len(self._handshakes))
        if reason is not None:
            sock.close()
            self._refuse(self._registry.next_id(), peer, now, reason)
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._mode.send_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._mode.send_buffer)
        assert self.clients is not None
        if self._config.tls is None:
            conn = self._registry.enter(peer, partial(PlainTransport, sock), self._mode.joined)
            self._faulting.at_connect(conn)
            self.clients.start_soon(conn.run, self._mode, self._registry)
        else:
            self.clients.start_soon(self._serve_tls_client, sock, peer, self._config.tls)

    # ---- refusals -------------------------------------------------------

    def _refuse(self, client_id: int, peer: Peer, now: float, reason: RefusalReason) -> None:
        """Count a refusal; publish it on its own only while refusals are few (see server/refusals.py)."""
        if self.refusals.refused(reason, now):
            self._outbox.lifecycle(
                ConnectionRefused(client_id=client_id, peer=peer, at=now + self._clock.offset, reason=reason)
            )
        else:
            self.refusal_summaries.pending()

    def _publish_refusals(self) -> None:
        summary = self.refusals.summary(self._clock.now(), trio.current_time())
        if summary is not None:
            self._outbox.lifecycle(summary)

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
            elif not self._registry.stopping:
                send_session_tickets(stream, sock)  # so that a client's Nagle never waits for our delayed ACK
                cipher = stream.cipher()
                tls_names = (stream.version(), cipher[0] if cipher else None)
                conn = self._registry.enter(peer, partial(TlsTransport, stream, sock), self._mode.joined, tls=tls_names)
                self._faulting.at_connect(conn)
        finally:
            if conn is None:
                release(stream)  # freed now, not at the next full garbage collection
                close_socket(sock)
        if conn is not None:
            await conn.run(self._mode, self._registry)

    def _handshake_failed(self, peer: Peer, why: str) -> None:
        self.tls_failed_total += 1
        self._tls_failed_unreported += 1
        self._tls_latest_failure = f"{format_address(peer)}: {why}"
        self.tls_failures.pending()

    def _report_tls_failures(self) -> None:
        """One notice for the first failure, then at most one per TLS_NOTICE_SECONDS with the count."""
        count, self._tls_failed_unreported = self._tls_failed_unreported, 0
        if count == 1:
            self._notices.say(f"TLS handshake failed: {self._tls_latest_failure}")
        elif count > 1:
            self._notices.say(
                f"{plural(count, 'TLS handshake')} failed (latest {self._tls_latest_failure}; "
                f"{self.tls_failed_total} in all)"
            )
