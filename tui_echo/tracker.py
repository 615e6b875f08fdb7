"""The monitor's numbers: rows for the connections table and the figures of the stats bar.

Pure logic on the server's exact counts, read at each refresh; rates come
from the difference between two refreshes. No trio, no Textual.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from tui_echo.events import ClientDisconnected, Peer
from tui_echo.state import ClientState, ServerTotals

GONE_ROW_SECONDS = 3.0  # how long a disconnected client's row shows its reason
MAX_GONE_ROWS = 200  # past this many, rows of departed clients leave at once
HISTORY_SECONDS = 60  # the sparkline's span, one sample a second
RATE_WINDOW = 1.0  # rates are averaged over about this many seconds


@dataclass(slots=True)  # not frozen: a thousand of these are built per refresh, and frozen init is slow
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

    @property
    def gone(self) -> bool:
        return self.ended_at is not None


@dataclass(slots=True)
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


class ConnectionTracker:
    """Live clients' rows, plus departed clients' rows for a few seconds with their reason."""

    def __init__(self) -> None:
        self._seen: dict[int, _Seen] = {}  # live clients; each leaves with its disconnect event
        self._departed: dict[int, _Departed] = {}

    def client_left(self, event: ClientDisconnected, now: float) -> None:
        if event.refused:
            return  # never had a row
        last_seen = self._seen.pop(event.client_id, None)
        if len(self._departed) >= MAX_GONE_ROWS:
            self._departed.pop(next(iter(self._departed)))
        row = ConnectionRow(
            event.client_id,
            event.peer,
            event.connected_at,
            event.at if last_seen is None else last_seen.last_activity,
            event.messages_in,
            event.bytes_in,
            event.bytes_out,
            0.0,
            event.reason,
            ended_at=event.at,
        )
        self._departed[event.client_id] = _Departed(row, now + GONE_ROW_SECONDS)

    def _rate(self, state: ClientState, now: float) -> float:
        """Messages per second over the last RATE_WINDOW or more: refreshes come at uneven times."""
        seen = self._seen.get(state.client_id)
        if seen is None:
            self._seen[state.client_id] = _Seen(state.messages_in, now, 0.0, state.last_activity)
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
                state.client_id,
                state.peer,
                state.connected_at,
                state.last_activity,
                state.messages_in,
                state.bytes_in,
                state.bytes_out,
                self._rate(state, now),
                str(state.status),
            )
            rows.append(row)
        for client_id, departed in list(self._departed.items()):
            if departed.until <= now:
                del self._departed[client_id]
            else:
                rows.append(departed.row)
        rows.sort(key=lambda row: row.client_id)
        return rows


@dataclass(frozen=True, slots=True)
class Stats:
    addresses: tuple[Peer, ...]
    uptime: float
    clients_now: int
    clients_peak: int
    clients_total: int
    refused_total: int
    messages: int
    bytes_in: int
    bytes_out: int
    messages_per_second: float
    bytes_per_second: float  # in and out together
    feed_skipped: int
    history: tuple[float, ...]  # messages per second, one a second, oldest first


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    messages: int
    bytes: int


class StatsTracker:
    def __init__(self, addresses: tuple[Peer, ...], started_at: float) -> None:
        self._addresses = addresses
        self._started_at = started_at
        self._peak = 0
        self._recent: deque[_Sample] = deque([_Sample(started_at, 0, 0)])
        self._history: deque[float] = deque(maxlen=HISTORY_SECONDS)
        self._history_mark = _Sample(started_at, 0, 0)

    def saw_clients(self, count: int) -> None:
        self._peak = max(self._peak, count)

    def stats(self, totals: ServerTotals, now: float, feed_skipped: int) -> Stats:
        self.saw_clients(totals.clients_now)
        sample = _Sample(now, totals.messages_in, totals.bytes_in + totals.bytes_out)
        self._recent.append(sample)
        while len(self._recent) > 2 and self._recent[1].at <= now - RATE_WINDOW:
            self._recent.popleft()
        oldest = self._recent[0]
        span = now - oldest.at
        messages_rate = (sample.messages - oldest.messages) / span if span > 0 else 0.0
        bytes_rate = (sample.bytes - oldest.bytes) / span if span > 0 else 0.0
        mark = self._history_mark
        if now - mark.at >= 1.0:
            self._history.append((sample.messages - mark.messages) / (now - mark.at))
            self._history_mark = sample
        return Stats(
            addresses=self._addresses,
            uptime=now - self._started_at,
            clients_now=totals.clients_now,
            clients_peak=self._peak,
            clients_total=totals.clients_total,
            refused_total=totals.refused_total,
            messages=totals.messages_in,
            bytes_in=totals.bytes_in,
            bytes_out=totals.bytes_out,
            messages_per_second=messages_rate,
            bytes_per_second=bytes_rate,
            feed_skipped=totals.events_skipped + feed_skipped,
            history=tuple(self._history),
        )
