"""The connections table's rows: one per live client, kept and updated in place, and departed ones for a while.

Pure logic on the server's exact counts. No trio, no Textual. A row is made
once, when its client first shows, and lives until its departed row expires;
each refresh copies into it only what changed, and says which rows changed,
came and went (``Changes``), so that what is built on the rows (their order,
a filter, groups) can do work in proportion to that, not to the client count.

Every msg/s on screen, a client's here and the server's in the stats bar, is
one definition: the messages counted in the last closed ``RateWindow``,
divided by its length.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.server.clients import ClientState
from tui_echo.server.events import ClientDisconnected
from tui_echo.net import Peer
from tui_echo.server.faults import FaultSpecError, parse_faults
from tui_echo.text import format_duration

GONE_ROW_SECONDS = 3.0  # how long a disconnected client's row shows its reason
MAX_GONE_ROWS = 200  # past this many, rows of departed clients leave at once
RATE_WINDOW = 1.0  # rates (here and in the stats bar) are averaged over at least this many seconds

PeerKey = tuple[int, bytes | str, int]


def peer_sort_key(peer: Peer) -> PeerKey:
    """Addresses in numeric order, then the port as a number: 10.0.0.9:80 before 10.0.0.10:80, IPv4 before
    IPv6 (an IPv4-mapped IPv6 address sorts as its IPv4 one), and anything else after both, as text."""
    host, port = peer
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # a zone (fe80::1%eth0) does not order
    except ValueError:
        return (2, host.lower(), port)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.version // 6, address.packed, port)  # version 4 -> 0, 6 -> 1


@dataclass(slots=True)
class RateWindow:
    """The windows every rate is measured over. One closes at the first refresh at least RATE_WINDOW
    after the last one closed, for the table and the stats bar at once, so that their numbers agree
    (a lone client's msg/s is the server's)."""

    start: float

    def close(self, now: float) -> float | None:
        """The length of the window that closes now, or None if it is too early."""
        if now - self.start < RATE_WINDOW:
            return None
        length, self.start = now - self.start, now
        return length


@dataclass(slots=True, kw_only=True, eq=False)  # eq=False: a row is one client's, compared by identity
class ConnectionRow:
    """One client's row. The same object for the client's whole stay in the table: refreshes update it in
    place, so whatever holds it (the table's order, a client's screen) sees the new numbers."""

    client_id: int
    peer: Peer
    connected_at: float
    last_activity: float
    messages: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    rate: float = 0.0  # messages per second over the last closed rate window
    dropped_out: int = 0  # chat, broker: deliveries that never reached it
    status: str = "connected"  # "connected", "closing", or why the client left
    ended_at: float | None = None  # when it left, for a departed client's row
    tls_version: str | None = None  # a TLS client's protocol version and cipher
    tls_cipher: str | None = None
    label: str = ""  # what the operator or a rule named the client ("" for none)
    proxy: Peer | None = None  # --proxy-protocol: the proxy that relayed it (``peer`` is the real client)
    fault: str = ""  # its faults as a spec, "" without
    fault_ends: float | None = None  # when a timed fault ends (wall clock)
    # ``client_id`` is the console's key (``client_keys``): among several servers these say whose it is.
    number: int = 0  # the id its server gave it (0: its key is its id)
    server: str = ""  # the name of its server, among several ("" with one)
    worker: int = 0  # the worker that holds it, on a --workers server (0 otherwise)
    peer_key: PeerKey = field(init=False)  # the peer's sort key, made once: the peer never changes
    window_messages: int = field(init=False, default=0)  # its count when the current rate window opened

    def __post_init__(self) -> None:
        self.peer_key = peer_sort_key(self.peer)
        self.number = self.number or self.client_id

    @property
    def gone(self) -> bool:
        return self.ended_at is not None

    @property
    def name(self) -> str:
        """What a person reads: ``#12``, or ``#12@7002`` among several servers (``ClientKeys.label``)."""
        return f"#{self.number}@{self.server}" if self.server else f"#{self.number}"

    @property
    def held_by_fault(self) -> bool:
        """A slow fault holds it (stall, timeout, latency, bandwidth): ``faulted``, not idle."""
        return bool(self.fault) and not self.gone and fault_is_slow(self.fault)

    def fault_text(self, now: float) -> str:
        """``latency=200ms``, with the time left where there is any: ``stall=5s (3 s left)``."""
        if self.fault_ends is None:
            return self.fault
        return f"{self.fault} ({format_duration(max(self.fault_ends - now, 0.0))} left)"


@functools.lru_cache(maxsize=256)
def fault_is_slow(spec: str) -> bool:
    """Whether a spec holds its client slow; cached: the same few specs come back at every refresh."""
    try:
        return parse_faults(spec).slow
    except FaultSpecError:
        return False


def _row_of(state: ClientState, keys: ClientKeys) -> ConnectionRow:
    key = state.client_id
    return ConnectionRow(
        client_id=key,
        number=keys.number(key),
        server=keys.server_name(key),
        worker=keys.worker(key) or 0,
        peer=state.peer,
        connected_at=state.connected_at,
        last_activity=state.last_activity,
        messages=state.messages_in,
        bytes_in=state.bytes_in,
        bytes_out=state.bytes_out,
        dropped_out=state.dropped_out,
        status=str(state.status),
        tls_version=state.tls_version,
        tls_cipher=state.tls_cipher,
        label=state.label,
        proxy=state.proxy,
        fault=state.fault,
        fault_ends=state.fault_ends,
    )


@dataclass(slots=True)
class Changes:
    """What one refresh did to the rows: each row in at most one of the three."""

    added: list[ConnectionRow] = field(default_factory=list)  # new rows, in the order they came
    changed: list[ConnectionRow] = field(default_factory=list)  # rows whose numbers, status or rate changed
    removed: list[ConnectionRow] = field(default_factory=list)  # departed rows that left the table

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    @property
    def work(self) -> int:
        """How many rows this refresh touched beyond reading the counts: what tests count."""
        return len(self.added) + len(self.changed) + len(self.removed)


class TableModel:
    """Every row the table may show, by client id: live clients' and, for a few seconds, departed ones'.
    ``keys``: how the console names its clients (the ids are keys among several servers)."""

    def __init__(self, keys: ClientKeys = ONE_SERVER) -> None:
        self.keys = keys
        self._rows: dict[int, ConnectionRow] = {}
        self._leaving: deque[tuple[float, ConnectionRow]] = deque()  # departed rows, by when they leave
        self._counting: set[ConnectionRow] = set()  # rows with messages in this rate window or a rate to clear
        self._pending = Changes()  # what departures did since the last refresh
        self._pending_added: set[int] = set()  # the ids in it, so that a row is in one list only

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[ConnectionRow]:
        return iter(self._rows.values())

    def row(self, client_id: int) -> ConnectionRow | None:
        return self._rows.get(client_id)

    def client_left(self, event: ClientDisconnected, now: float) -> None:
        row = self._rows.get(event.client_id)
        if row is None:  # it came and went between two refreshes
            key, keys = event.client_id, self.keys
            row = self._rows[key] = ConnectionRow(
                client_id=key,
                peer=event.peer,
                connected_at=event.connected_at,
                last_activity=event.at,
                number=keys.number(key),
                server=keys.server_name(key),
                worker=keys.worker(key) or 0,
            )
            self._pending.added.append(row)
            self._pending_added.add(row.client_id)
        elif row.gone:
            return
        elif row.client_id not in self._pending_added:
            self._pending.changed.append(row)
        row.messages, row.bytes_in, row.bytes_out = event.messages_in, event.bytes_in, event.bytes_out
        row.dropped_out, row.rate, row.status, row.ended_at = event.dropped_out, 0.0, event.why, event.at
        self._counting.discard(row)
        self._leaving.append((now + GONE_ROW_SECONDS, row))
        if len(self._leaving) > MAX_GONE_ROWS:
            self._expire(self._leaving.popleft()[1], self._pending)

    def _expire(self, row: ConnectionRow, changes: Changes) -> None:
        if self._rows.pop(row.client_id, None) is row:
            changes.removed.append(row)

    def refresh(self, clients: Iterable[ClientState], now: float, window: float | None) -> Changes:
        """Read the live clients' counts into their rows (one comparison per client; a row is written only
        if its client's numbers moved) and let expired departed rows go. ``window``: the length of the
        rate window that closed now (``RateWindow.close``), if one did."""
        changes, self._pending = self._pending, Changes()
        self._pending_added.clear()
        rows, counting, keys = self._rows, self._counting, self.keys
        for state in clients:
            row = rows.get(state.client_id)
            if row is None:
                row = rows[state.client_id] = _row_of(state, keys)  # every message it sent counts in this window
                changes.added.append(row)
                if row.messages:
                    counting.add(row)
            elif (
                state.messages_in != row.messages
                or state.bytes_in != row.bytes_in
                or state.bytes_out != row.bytes_out
                or state.status != row.status
                or state.dropped_out != row.dropped_out
                or state.label != row.label
                or state.fault != row.fault
                or row.fault_ends is not None  # its time left counts down
            ) and row.ended_at is None:  # a departed row keeps what its disconnect said
                row.messages, row.bytes_in, row.bytes_out = state.messages_in, state.bytes_in, state.bytes_out
                row.last_activity, row.dropped_out = state.last_activity, state.dropped_out
                row.status, row.label = str(state.status), state.label
                row.fault, row.fault_ends = state.fault, state.fault_ends
                changes.changed.append(row)
                counting.add(row)
        if window is not None:
            self._close_window(window, changes)
        leaving = self._leaving
        while leaving and leaving[0][0] <= now:
            self._expire(leaving.popleft()[1], changes)
        if changes.removed:  # a row that came or changed and left since the last refresh: only gone
            gone = set(changes.removed)
            changes.added = [row for row in changes.added if row not in gone]
            changes.changed = [row for row in changes.changed if row not in gone]
        return changes

    def _close_window(self, window: float, changes: Changes) -> None:
        """Each counting row's rate over the window that closed; a row with no messages in it and a rate
        of 0 stops counting, so idle clients cost nothing here."""
        touched = {*changes.added, *changes.changed}
        for row in list(self._counting):
            rate = (row.messages - row.window_messages) / window if row.messages > row.window_messages else 0.0
            row.window_messages = row.messages
            if rate != row.rate:
                row.rate = rate
                if row not in touched:
                    changes.changed.append(row)
            if rate == 0.0:
                self._counting.discard(row)
