"""The connections table's rows: live clients read at each refresh, departed ones for a while.

Pure logic on the server's exact counts; a client's rate comes from the
difference between two refreshes at least ``RATE_WINDOW`` apart. No trio, no
Textual.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tui_echo.server.clients import ClientState
from tui_echo.server.events import ClientDisconnected, Peer

GONE_ROW_SECONDS = 3.0  # how long a disconnected client's row shows its reason
MAX_GONE_ROWS = 200  # past this many, rows of departed clients leave at once
RATE_WINDOW = 1.0  # rates (here and in the stats bar) are averaged over at least this many seconds


@dataclass(slots=True, kw_only=True)  # not frozen: a thousand are built per refresh, and frozen init is slow
class ConnectionRow:
    client_id: int
    peer: Peer
    connected_at: float
    last_activity: float
    messages: int
    bytes_in: int
    bytes_out: int
    rate: float  # messages per second since the previous refresh
    status: str  # "connected", "closing", or why the client left
    ended_at: float | None = None  # when it left, for a departed client's row
    tls_version: str | None = None  # a TLS client's protocol version and cipher
    tls_cipher: str | None = None

    @property
    def gone(self) -> bool:
        return self.ended_at is not None


@dataclass(slots=True, kw_only=True)
class _Seen:
    """What the tracker remembers of a live client between refreshes."""

    messages: int  # at ``since``, the start of the current rate window
    since: float
    rate: float  # over the last full window
    last_activity: float


@dataclass(frozen=True, slots=True)
class _Departed:
    row: ConnectionRow
    until: float


class TableModel:
    """Live clients' rows, plus departed clients' rows for a few seconds with their reason."""

    def __init__(self) -> None:
        self._seen: dict[int, _Seen] = {}  # live clients; each leaves with its disconnect event
        self._departed: dict[int, _Departed] = {}

    def client_left(self, event: ClientDisconnected, now: float) -> None:
        last_seen = self._seen.pop(event.client_id, None)
        if len(self._departed) >= MAX_GONE_ROWS:
            self._departed.pop(next(iter(self._departed)))
        row = ConnectionRow(
            client_id=event.client_id,
            peer=event.peer,
            connected_at=event.connected_at,
            last_activity=event.at if last_seen is None else last_seen.last_activity,
            messages=event.messages_in,
            bytes_in=event.bytes_in,
            bytes_out=event.bytes_out,
            rate=0.0,
            status=event.why,
            ended_at=event.at,
        )
        self._departed[event.client_id] = _Departed(row, now + GONE_ROW_SECONDS)

    def _rate(self, state: ClientState, now: float) -> float:
        """Messages per second over the last RATE_WINDOW or more: refreshes come at uneven times."""
        seen = self._seen.get(state.client_id)
        if seen is None:
            self._seen[state.client_id] = _Seen(
                messages=state.messages_in, since=now, rate=0.0, last_activity=state.last_activity
            )
            return 0.0
        seen.last_activity = state.last_activity
        if now - seen.since >= RATE_WINDOW:
            seen.rate = max(state.messages_in - seen.messages, 0) / (now - seen.since)
            seen.messages, seen.since = state.messages_in, now
        return seen.rate

    def rows(self, clients: Iterable[ClientState], now: float) -> list[ConnectionRow]:
        """Rows in client id order: live clients first read now, then recently departed ones."""
        rows = []
        for state in clients:
            if state.client_id in self._departed:
                continue  # its disconnect event came before the state vanished
            row = ConnectionRow(
                client_id=state.client_id,
                peer=state.peer,
                connected_at=state.connected_at,
                last_activity=state.last_activity,
                messages=state.messages_in,
                bytes_in=state.bytes_in,
                bytes_out=state.bytes_out,
                rate=self._rate(state, now),
                status=str(state.status),
                tls_version=state.tls_version,
                tls_cipher=state.tls_cipher,
            )
            rows.append(row)
        for client_id, departed in list(self._departed.items()):
            if departed.until <= now:
                del self._departed[client_id]
            else:
                rows.append(departed.row)
        rows.sort(key=lambda row: row.client_id)
        return rows
