"""The live connections, and the counts of those that left: who is a client, and the server's totals.

A connection is counted in (``enter``: its id, its state, ``ClientConnected``)
and out (``retire``: ``ClientDisconnected``, its counts folded into the
totals) here, and nowhere else. The relay modes read the live connections to
deliver to everyone; the operator reads them to kick, send and ban.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from tui_echo.server.access import AccessControl
from tui_echo.server.clients import ClientState
from tui_echo.server.clock import WallClock
from tui_echo.server.config import ServerConfig
from tui_echo.server.connection import Connection
from tui_echo.net import Peer
from tui_echo.server.events import ClientConnected, ClientDisconnected, DisconnectReason
from tui_echo.server.outbox import EventOutbox
from tui_echo.server.siblings import Siblings
from tui_echo.server.transport import Transport, WriteTimeout


@dataclass(frozen=True, slots=True)
class ClientTotals:
    """The clients' part of ``ServerTotals``: live clients and those that left, together."""

    clients_total: int
    clients_now: int
    clients_peak: int
    messages_in: int
    bytes_in: int
    bytes_out: int
    dropped_out: int


class Registry:
    """The live connections by client id, in the order they came."""

    def __init__(self, config: ServerConfig, access: AccessControl, outbox: EventOutbox, clock: WallClock) -> None:
        self.connections: dict[int, Connection] = {}
        self.stopping = False  # set once the server stops: no more clients, and no farewells
        self._write_timeout = config.write_timeout
        self._access = access
        self._outbox = outbox
        self._clock = clock
        # Also numbers refused connections, so that the log can tell them apart. A worker's ids interleave
        # with its siblings' (see WorkerSlot).
        slot = config.worker
        self._ids = itertools.count(1) if slot is None else itertools.count(slot.first_id, slot.count)
        # A worker's siblings' clients, so that --max-clients counts the whole server (None: one process).
        self._siblings = (
            None if slot is None or slot.counts_fd < 0 else Siblings(slot.counts_fd, slot.count, slot.index)
        )
        self._clients_total = 0
        self._clients_peak = 0
        # Counts of the clients that already left.
        self._done_messages = 0
        self._done_bytes_in = 0
        self._done_bytes_out = 0
        self._done_dropped_out = 0
        self.disconnects: dict[DisconnectReason, int] = {}  # clients that left, by reason (for --metrics)

    def __len__(self) -> int:
        return len(self.connections)

    def next_id(self) -> int:
        return next(self._ids)

    def elsewhere(self) -> int:
        """The clients the other workers of a --workers server hold (0 for a server of one process)."""
        return 0 if self._siblings is None else self._siblings.others()

    def enter(
        self,
        peer: Peer,
        transport: Callable[[ClientState, WriteTimeout], Transport],
        joined: Callable[[Connection], None],
        *,
        tls: tuple[str | None, str | None] = (None, None),
        proxy: Peer | None = None,
    ) -> Connection:
        """Make an admitted connection a client: its id, state, transport and ``ClientConnected``.

        ``transport`` makes its transport, which counts into its state and waits under its write
        timeout; ``tls`` is its TLS version and cipher, if any; ``proxy`` the proxy that relayed it (then
        ``peer`` is the client its PROXY header named); ``joined`` (the mode's) sees it first,
        before anyone else can.
        """
        client_id = next(self._ids)
        now = self._clock.now()
        state = ClientState(client_id=client_id, peer=peer, connected_at=now, last_activity=now)
        state.tls_version, state.tls_cipher = tls
        state.proxy = proxy
        write_timeout = WriteTimeout(self._write_timeout)
        conn = Connection(state, transport(state, write_timeout), write_timeout)
        joined(conn)
        self.connections[client_id] = conn
        if self._siblings is not None:
            self._siblings.publish(len(self.connections))
        self._access.admitted(peer[0])
        self._clients_total += 1
        self._clients_peak = max(self._clients_peak, len(self.connections))
        self._outbox.lifecycle(
            ClientConnected(
                client_id=client_id,
                peer=peer,
                at=now,
                tls_version=state.tls_version,
                tls_cipher=state.tls_cipher,
                proxy=proxy,
            )
        )
        return conn

    def retire(self, conn: Connection, reason: DisconnectReason, error: str) -> ClientDisconnected:
        """The client is gone: fold its counts into the totals and publish ``ClientDisconnected``."""
        state = conn.state
        del self.connections[state.client_id]
        if self._siblings is not None:
            self._siblings.publish(len(self.connections))
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1
        self._access.left(state.peer[0])
        if conn.outbound is not None:
            conn.outbound.abandon()
        self._done_messages += state.messages_in
        self._done_bytes_in += state.bytes_in
        self._done_bytes_out += state.bytes_out
        self._done_dropped_out += state.dropped_out
        gone = ClientDisconnected.of(state, at=self._clock.now(), reason=reason, error=error)
        self._outbox.lifecycle(gone)
        return gone

    def totals(self) -> ClientTotals:
        """Exact at the moment of reading."""
        live = [conn.state for conn in self.connections.values()]
        return ClientTotals(
            clients_total=self._clients_total,
            clients_now=len(live),
            clients_peak=self._clients_peak,
            messages_in=self._done_messages + sum(s.messages_in for s in live),
            bytes_in=self._done_bytes_in + sum(s.bytes_in for s in live),
            bytes_out=self._done_bytes_out + sum(s.bytes_out for s in live),
            dropped_out=self._done_dropped_out + sum(s.dropped_out for s in live),
        )
