"""Who gets in: the accept loop, the admission rules, refusals, the PROXY header and the TLS handshake.

``Admission.serve`` accepts on every listener in batches, decides each
connection synchronously (``AccessControl.check``: bans, allow/deny, accept
rate, the client cap, the per-address cap) and either refuses it (counted by
reason, published one by one only while refusals are few) or makes it a
client: a plain connection at once, a TLS one after its handshake, which runs
in the client's own task so that accepting never waits for it.

With ``--proxy-protocol`` the door checks only the proxy (``--proxy-from``,
the client cap); the client's own task reads the PROXY header (bounded, under
a timeout), then checks the real client's address as above, then runs the
TLS handshake if any. A connection still reading its header or in its
handshake counts toward ``--max-clients``.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable
from functools import partial

import trio

from tui_echo.server.access import AccessControl, in_networks, plain_host
from tui_echo.server.clients import ClientState
from tui_echo.server.connection import ModeHandler
from tui_echo.server.context import Context
from tui_echo.net import Peer, describe_error, format_address
from tui_echo.server.events import ConnectionRefused, RefusalReason
from tui_echo.server.faulting import Faulting
from tui_echo.server.notices import Failures, Paced
from tui_echo.server.proxy_header import MAX_HEADER_BYTES, BadProxyHeader, ProxyHeader, parse
from tui_echo.server.refusals import SUMMARY_SECONDS, RefusalCounter
from tui_echo.server.tls import TlsSettings, describe_tls_error
from tui_echo.server.tls_stream import release, send_alert, send_session_tickets
from tui_echo.server.tap import RecordSink, TapTransport
from tui_echo.server.transport import PlainTransport, TlsTransport, Transport, WriteTimeout, close_socket

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
FAILURE_NOTICE_SECONDS = 1.0  # failed TLS handshakes, bad PROXY headers: a notice at most once per this long


class Admission:
    def __init__(self, context: Context, access: AccessControl, mode: ModeHandler, faulting: Faulting) -> None:
        self._config, self._registry, self._outbox = context.config, context.registry, context.outbox
        self._clock, self._notices = context.clock, context.notices
        self._access = access
        self._mode = mode
        self._faulting = faulting  # --fault: given to new clients as they come in
        self.clients: trio.Nursery | None = None  # where each client's task runs; set before serving
        self.recording: RecordSink | None = None  # while a recording runs, each new client's transport is tapped
        self.refusals = RefusalCounter()
        self.refusal_summaries = Paced(SUMMARY_SECONDS, self._publish_refusals, at_once=False)
        # Connections still reading their PROXY header or in their TLS handshake (each one's scope,
        # cancelled when the server stops): they count toward --max-clients.
        self._starting: set[trio.CancelScope] = set()
        self.tls_failures = Failures(("TLS handshake", "failed"), self._notices, FAILURE_NOTICE_SECONDS)
        self.proxy_checks = 0  # the proxy's own connections (health checks): see _serve_proxied
        self.bad_headers = Failures(("bad PROXY header", "refused"), self._notices, FAILURE_NOTICE_SECONDS)

    async def serve(self, listeners: list[socket.socket]) -> None:
        """Accept on every listener, and report refusals and TLS failures as they come, until cancelled."""
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener)
            nursery.start_soon(self.refusal_summaries.run)
            if self._config.tls is not None:
                nursery.start_soon(self.tls_failures.paced.run)
            if self._config.proxy_protocol:
                nursery.start_soon(self.bad_headers.paced.run)
                if not self._config.proxy_from:
                    self._notices.say(
                        "warning: --proxy-protocol without --proxy-from: any client can claim any address "
                        "(name your proxies with --proxy-from CIDR)"
                    )

    def stop(self, listeners: list[socket.socket]) -> None:
        """At the stop: take in what waits in the listen queues (so that a stop closes them like every
        other client, FIN then EOF, instead of the kernel resetting them), end every handshake, and
        report the failures not yet reported."""
        for listener in listeners:
            with contextlib.suppress(OSError):  # BlockingIOError: the queue is empty
                while self._outbox.backlog < self._config.lifecycle_backlog:
                    self._accept_batch(listener)
        for starting in self._starting:
            starting.cancel()
        self.tls_failures.paced.report_now()
        self.bad_headers.paced.report_now()

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
        if self._config.proxy_protocol:
            reason = self._check_proxy(host)
        else:
            reason = self._access.check(host, now, self._clients_now())
        if reason is not None:
            sock.close()
            self._refuse(self._registry.next_id(), peer, now, reason)
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._mode.send_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._mode.send_buffer)
        assert self.clients is not None
        if self._config.proxy_protocol:
            self.clients.start_soon(self._serve_proxied, sock, peer)
        elif self._config.tls is None:
            conn = self._registry.enter(peer, self._tapped(partial(PlainTransport, sock)), self._mode.joined)
            self._faulting.at_connect(conn)
            self.clients.start_soon(conn.run, self._mode, self._registry)
        else:
            self.clients.start_soon(self._serve_tls_client, sock, peer, self._config.tls)

    def _clients_now(self) -> int:
        """What --max-clients counts: clients served, those still starting (TLS, PROXY), and other workers'."""
        return len(self._registry) + len(self._starting) + self._registry.elsewhere()

    # ---- the PROXY header --------------------------------------------------

    def _check_proxy(self, host: str) -> RefusalReason | None:
        """At the door of a --proxy-protocol server: the proxy, not yet the client (see _serve_proxied)."""
        if self._config.proxy_from and not in_networks(host, self._config.proxy_from):
            return RefusalReason.UNTRUSTED_PROXY
        max_clients = self._config.max_clients
        if max_clients is not None and self._clients_now() >= max_clients:
            return RefusalReason.SERVER_FULL
        return None

    async def _serve_proxied(self, sock: socket.socket, proxy: Peer) -> None:
        """Read the PROXY header (in this task), check the real client, then serve it as any other.

        A v2 LOCAL header (the proxy's own health check) or an UNKNOWN one is served as the proxy itself;
        those and a header naming the very connection it came on (HAProxy's v1 health check) are
        counted as the proxy's checks.
        """
        header: ProxyHeader | None = None
        failure = ""
        timeout = self._config.proxy_header_timeout
        # One scope for the timeout and the stop (which cancels it): one object less per connection.
        with trio.CancelScope(deadline=trio.current_time() + timeout) as starting:
            self._starting.add(starting)
            try:
                header = await _read_proxy_header(sock)
            except BadProxyHeader as exc:
                failure = str(exc)
            except OSError as exc:
                failure = describe_error(exc)
            finally:
                self._starting.discard(starting)
        if starting.cancelled_caught and not self._registry.stopping:
            failure = f"no PROXY header within {timeout:g} s"
        now = trio.current_time()
        peer = proxy
        if header is not None and header.source is not None:
            peer = (plain_host(header.source[0]), header.source[1])
        if header is not None and peer == proxy:  # LOCAL, UNKNOWN, or (HAProxy's v1 checks) naming itself
            self.proxy_checks += 1
        reason = self._access.check(peer[0], now, self._clients_now()) if header is not None else None
        if header is None or reason is not None or self._registry.stopping:
            close_socket(sock)
            if failure:
                self.bad_headers.failed(f"{format_address(proxy)}: {failure}")
                self._refuse(self._registry.next_id(), proxy, now, RefusalReason.BAD_PROXY_HEADER)
            elif reason is not None:
                self._refuse(self._registry.next_id(), peer, now, reason)
            return
        if self._config.tls is not None:
            await self._serve_tls_client(sock, peer, self._config.tls, proxy)
        else:
            transport = self._tapped(partial(PlainTransport, sock))
            conn = self._registry.enter(peer, transport, self._mode.joined, proxy=proxy)
            self._faulting.at_connect(conn)
            await conn.run(self._mode, self._registry)

    def _tapped(self, make: Callable[[ClientState, WriteTimeout], Transport]) -> Callable[..., Transport]:
        """The client's own transport, or, while recording, a tap around it."""
        sink = self.recording
        if sink is None:
            return make
        return lambda state, timeout: TapTransport(make(state, timeout), sink, state.client_id)

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

    async def _serve_tls_client(
        self, sock: socket.socket, peer: Peer, tls: TlsSettings, proxy: Peer | None = None
    ) -> None:
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
                self._starting.add(handshake)
                try:
                    with trio.move_on_after(tls.handshake_timeout) as timer:
                        await stream.do_handshake()
                    failure = f"no handshake within {tls.handshake_timeout:g} s" if timer.cancelled_caught else None
                except trio.BrokenResourceError as exc:
                    failure = describe_tls_error(exc.__cause__)
                    send_alert(stream, sock)  # e.g. protocol_version to a TLS 1.0 client, as a plain ssl server does
                finally:
                    self._starting.discard(handshake)
            if failure is not None:
                self.tls_failures.failed(f"{format_address(peer)}: {failure}")
            elif not self._registry.stopping:
                send_session_tickets(stream, sock)  # so that a client's Nagle never waits for our delayed ACK
                cipher = stream.cipher()
                tls_names = (stream.version(), cipher[0] if cipher else None)
                transport = self._tapped(partial(TlsTransport, stream, sock))
                conn = self._registry.enter(peer, transport, self._mode.joined, tls=tls_names, proxy=proxy)
                self._faulting.at_connect(conn)
        finally:
            if conn is None:
                release(stream)  # freed now, not at the next full garbage collection
                close_socket(sock)
        if conn is not None:
            await conn.run(self._mode, self._registry)


async def _read_proxy_header(sock: socket.socket) -> ProxyHeader:
    """Take exactly the PROXY header off the socket, leaving the client's first bytes where they are.

    Peeks at what has come, and consumes either the whole header or, while it is incomplete, all that
    was peeked (every byte of an incomplete header belongs to it). At most MAX_HEADER_BYTES are held.
    """
    taken = b""
    while True:
        try:
            peeked = sock.recv(MAX_HEADER_BYTES - len(taken), socket.MSG_PEEK)
        except BlockingIOError:
            peeked = None
        if peeked is None:  # waits outside the except: it would keep the exception alive while it waits
            await trio.lowlevel.wait_readable(sock)
            continue
        if not peeked:
            raise BadProxyHeader(
                "closed before the end of its PROXY header" if taken else "closed with no PROXY header"
            )
        header = parse(taken + peeked)
        if header is not None:
            sock.recv(header.length - len(taken))
            return header
        sock.recv(len(peeked))
        taken += peeked
