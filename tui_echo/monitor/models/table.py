"""The connections table's rows: live clients read at each refresh, departed ones for a while.

Pure logic on the server's exact counts. No trio, no Textual. Every msg/s on
screen, a client's here and the server's in the stats bar, is one definition:
the messages counted in the last closed ``RateWindow``, divided by its length.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from tui_echo.server.clients import ClientState
from tui_echo.server.events import ClientDisconnected
from tui_echo.net import Peer
from tui_echo.server.faults import FaultSpecError, parse_faults
from tui_echo.text import format_duration

GONE_ROW_SECONDS = 3.0  # how long a disconnected client's row shows its reason
MAX_GONE_ROWS = 200  # past this many, rows of departed clients leave at once
RATE_WINDOW = 1.0  # rates (here and in the stats bar) are averaged over at least this many seconds


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
    dropped_out: int = 0  # chat, broker: deliveries that never reached it
    status: str  # "connected", "closing", or why the client left
    ended_at: float | None = None  # when it left, for a departed client's row
    tls_version: str | None = None  # a TLS client's protocol version and cipher
    tls_cipher: str | None = None
    fault: str = ""  # its faults as a spec, "" without
    fault_ends: float | None = None  # when a timed fault ends (wall clock)

    @property
    def gone(self) -> bool:
        return self.ended_at is not None

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


@dataclass(slots=True, kw_only=True)
class _Seen:
    """What the tracker remembers of a live client between refreshes."""

    messages: int  # at the start of the current rate window (0 for a client that joined during it)
    rate: float  # over the last closed window
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
            dropped_out=event.dropped_out,
            rate=0.0,
            status=event.why,
            ended_at=event.at,
        )
        self._departed[event.client_id] = _Departed(row, now + GONE_ROW_SECONDS)

    def _rate(self, state: ClientState, window: float | None) -> float:
        seen = self._seen.get(state.client_id)
        if seen is None:  # it connected during this window: every message it sent counts in it
            seen = self._seen[state.client_id] = _Seen(messages=0, rate=0.0, last_activity=state.last_activity)
        seen.last_activity = state.last_activity
        if window is not None:
            seen.rate = max(state.messages_in - seen.messages, 0) / window
            seen.messages = state.messages_in
        return seen.rate

    def rows(self, clients: Iterable[ClientState], now: float, window: float | None) -> list[ConnectionRow]:
        """Rows in client id order: live clients first read now, then recently departed ones.
        ``window``: the length of the rate window that closed now (``RateWindow.close``), if one did."""
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
                dropped_out=state.dropped_out,
                rate=self._rate(state, window),
                status=str(state.status),
                tls_version=state.tls_version,
                tls_cipher=state.tls_cipher,
                fault=state.fault,
                fault_ends=state.fault_ends,
            )
            rows.append(row)
        for client_id, departed in list(self._departed.items()):
            if departed.until <= now:
                del self._departed[client_id]
            else:
                rows.append(departed.row)
        rows.sort(key=lambda row: row.client_id)
        return rows
