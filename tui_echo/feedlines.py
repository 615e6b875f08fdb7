"""What the monitor's feed shows: server events turned into feed lines, at a rate a person can read.

Pure logic, no trio, no Textual. A client may add ``LINES_PER_CLIENT_SECOND``
data lines a second (bursts of ``LINES_PER_CLIENT_BURST`` show whole), a batch
at most ``lines_per_batch``; the rest are counted, and once a second the
busiest clients get a "busy" line saying how many of theirs were left out.
Connect, disconnect and server lines are always shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tui_echo.escape import escape_bytes
from tui_echo.events import (
    ClientConnected,
    ClientDisconnected,
    DataEchoed,
    DataSent,
    ServerEvent,
    ServerListening,
    ServerNotice,
    ServerStopped,
)
from tui_echo.listeners import describe_addresses, format_address
from tui_echo.units import format_duration, format_size, plural

TEXT_PREVIEW_BYTES = 200  # of a chunk, shown in the text view
HEX_KEEP_BYTES = 256  # of a chunk, kept for the hex view
LINES_PER_CLIENT_SECOND = 10  # so that one busy client cannot drown the others' lines...
LINES_PER_CLIENT_BURST = 10  # ...while a short burst (a paste) still shows whole
BUSY_NOTES_PER_SECOND = 5  # "lines not shown" notes per second, for the busiest clients


class Direction(StrEnum):
    ECHOED = "⇄"  # received from the client and echoed back
    SENT = "→"  # sent by the operator
    SYSTEM = "•"  # connect, disconnect, kick, refusal, notice


@dataclass(frozen=True, slots=True)
class FeedEntry:
    at: float
    client_id: int | None
    direction: Direction
    text: str  # inert: escaped client bytes, or a system message
    data: bytes = b""  # the first HEX_KEEP_BYTES of client bytes, for the hex view
    size: int = 0  # the chunk's full size

    @classmethod
    def of_bytes(cls, at: float, client_id: int, direction: Direction, data: bytes) -> FeedEntry:
        text, cut = escape_bytes(data, TEXT_PREVIEW_BYTES)
        if cut:
            text += f" … +{format_size(len(data) - TEXT_PREVIEW_BYTES)}"
        return cls(at, client_id, direction, text, data[:HEX_KEEP_BYTES], len(data))

    @classmethod
    def system(cls, at: float, client_id: int | None, text: str) -> FeedEntry:
        return cls(at, client_id, Direction.SYSTEM, text)


def _goodbye(event: ClientDisconnected) -> str:
    return (
        f"disconnected: {event.reason} · {plural(event.messages_in, 'msg')}, {format_size(event.bytes_in)} in, "
        f"after {format_duration(event.at - event.connected_at)}"
    )


class FeedIntake:
    def __init__(self, lines_per_batch: int) -> None:
        self._lines_per_batch = lines_per_batch
        self._allowance: dict[int, tuple[float, float]] = {}  # client id -> (lines it may show, as of when)
        self._unshown: dict[int, int] = {}  # client id -> data lines left out since the last notes
        self._notes_due = 0.0
        self.skipped = 0  # data lines left out, in all

    def entries(self, events: Iterable[ServerEvent], now: float) -> list[FeedEntry]:
        """The feed lines for one batch of events, oldest first."""
        entries: list[FeedEntry] = []
        data_lines = 0
        for event in events:
            match event:
                case DataEchoed(client_id, data, at) | DataSent(client_id, data, at):
                    if data_lines < self._lines_per_batch and self._take_line(client_id, now):
                        direction = Direction.ECHOED if isinstance(event, DataEchoed) else Direction.SENT
                        entries.append(FeedEntry.of_bytes(at, client_id, direction, data))
                        data_lines += 1
                    else:
                        self.skipped += 1
                        self._unshown[client_id] = self._unshown.get(client_id, 0) + 1
                case ClientConnected(client_id, peer, at):
                    entries.append(FeedEntry.system(at, client_id, f"connected from {format_address(peer)}"))
                case ClientDisconnected() if event.refused:
                    entries.append(FeedEntry.system(event.at, None, f"{event.reason}: {format_address(event.peer)}"))
                case ClientDisconnected():
                    self._allowance.pop(event.client_id, None)
                    entries.append(FeedEntry.system(event.at, event.client_id, _goodbye(event)))
                case ServerNotice(message, at):
                    entries.append(FeedEntry.system(at, None, message))
                case ServerListening(addresses, at):
                    entries.append(FeedEntry.system(at, None, f"listening on {describe_addresses(addresses)}"))
                case ServerStopped(at=at):
                    entries.append(FeedEntry.system(at, None, "server stopped"))
        return entries + self._busy_notes(now)

    def _take_line(self, client_id: int, now: float) -> bool:
        """Whether the client may add one more data line now (a token bucket per client)."""
        lines, since = self._allowance.get(client_id, (LINES_PER_CLIENT_BURST, now))
        lines = min(LINES_PER_CLIENT_BURST, lines + (now - since) * LINES_PER_CLIENT_SECOND)
        if lines < 1:
            self._allowance[client_id] = (lines, now)
            return False
        self._allowance[client_id] = (lines - 1, now)
        return True

    def _busy_notes(self, now: float) -> list[FeedEntry]:
        """Once a second: which clients had lines left out, busiest first."""
        if now < self._notes_due:
            return []
        busiest = sorted(self._unshown.items(), key=lambda item: -item[1])[:BUSY_NOTES_PER_SECOND]
        self._unshown.clear()
        self._notes_due = now + 1.0
        return [
            FeedEntry.system(now, client_id, f"busy: {plural(count, 'line')} not shown in the last second")
            for client_id, count in busiest
        ]
