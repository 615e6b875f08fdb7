"""A recording played back: the clients, totals and events a live server had, at any position.

Pure logic (no trio, no Textual): the replay monitor's source and the headless
replay both drive it. ``advance(to)`` applies every record up to a time and
returns the events a live server published then (data events rebuilt from the
recorded bytes, a message per chunk, line or frame as the recorded
``--framing`` counts them); ``seek(to)`` jumps, forward or back, rebuilding
the state silently. ``--client N`` keeps one client's records, ``--from`` and
``--to`` (seconds from the recording's start) narrow the span.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tui_echo.net import Peer
from tui_echo.recording.reader import Entry, read
from tui_echo.server.clients import ClientState
from tui_echo.server.config import Framing, ServerConfig
from tui_echo.server.events import (
    EVENT_DATA_BYTES,
    ClientConnected,
    ClientDisconnected,
    ClientLabelled,
    DataReceived,
    FaultChanged,
    ServerEvent,
    ServerNotice,
    ServerTotals,
)
from tui_echo.server.framing import Framer, Kind
from tui_echo.text import format_size
from tui_echo.times import utc_time
from tui_echo.wire.recording import Gap, Moved, RecordingHeader


@dataclass(frozen=True, slots=True)
class Span:
    start: float  # wall clock
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Playback:
    def __init__(
        self, paths: list[str], *, client: int | None = None, start: float = 0.0, end: float | None = None
    ) -> None:
        """``start``, ``end``: seconds from the recording's first record (``end`` None: to its last)."""
        entries = [entry for _index, entry in read(paths)]
        headers = [entry for entry in entries if isinstance(entry, RecordingHeader)]
        if not headers:
            raise ValueError("no recording header")
        self.header = headers[0]
        # the times of bytes and of events come from two clocks that may differ by a millisecond
        first, last = (
            min(entry.at for entry in entries),
            max(entry.at for entry in entries),
        )
        self.span = Span(first + start, min(last, first + end) if end is not None else last)
        self._entries = [e for e in entries if client is None or getattr(e, "client_id", client) == client]
        self._only = client
        self._reset()
        self.seek(self.span.start)

    @property
    def addresses(self) -> tuple[Peer, ...]:
        return self.header.addresses

    @property
    def config(self) -> ServerConfig:
        return self.header.config

    def _reset(self) -> None:
        self._next = 0  # the first entry not applied yet
        self.position = self.span.start
        self._clients: dict[int, ClientState] = {}
        self._framers: dict[int, Framer] = {}
        self._totals = ServerTotals(0, 0, 0, 0, 0, 0, 0, 0)
        self._gone_messages = self._gone_in = self._gone_out = 0

    @property
    def finished(self) -> bool:
        return self.position >= self.span.end

    def seek(self, to: float) -> None:
        """Jump to ``to`` (wall clock, kept within the span); the state is as it was then, no events."""
        to = min(max(to, self.span.start), self.span.end)
        if to < self.position or self._next == 0:
            self._reset()
        self._apply_until(to, inclusive=False)  # what happens at ``to`` itself is the next advance's
        self.position = to

    def advance(self, to: float) -> list[ServerEvent]:
        """Apply every record up to ``to``; the events a live server published meanwhile."""
        return self._apply_until(min(to, self.span.end), inclusive=True)

    def _apply_until(self, to: float, *, inclusive: bool) -> list[ServerEvent]:
        events: list[ServerEvent] = []
        entries = self._entries
        while self._next < len(entries) and (
            entries[self._next].at <= to if inclusive else entries[self._next].at < to
        ):
            event = self._apply(entries[self._next])
            self._next += 1
            if event is not None and event.at >= self.span.start:
                events.append(event)
        self.position = max(self.position, to)
        return events

    def _apply(self, entry: Entry) -> ServerEvent | None:
        match entry:
            case Moved(incoming=True):
                return self._received(entry)
            case Moved():
                state = self._clients.get(entry.client_id)
                if state is not None:
                    state.bytes_out += entry.size
                return None
            case Gap():
                return ServerNotice(message=_describe_gap(entry), at=entry.at)
            case RecordingHeader():
                return None
            case ClientConnected():
                self._clients[entry.client_id] = ClientState(
                    client_id=entry.client_id, peer=entry.peer, connected_at=entry.at, last_activity=entry.at
                )
                self._totals = replace(
                    self._totals,
                    clients_total=self._totals.clients_total + 1,
                    clients_peak=max(self._totals.clients_peak, len(self._clients)),
                )
                return entry
            case ClientDisconnected():
                gone = self._clients.pop(entry.client_id, None)
                self._framers.pop(entry.client_id, None)
                if gone is not None:
                    self._gone_messages += gone.messages_in
                    self._gone_in += gone.bytes_in
                    self._gone_out += gone.bytes_out
                return entry
            case FaultChanged():  # the table and a client's screen show its faults as they were
                state = self._clients.get(entry.client_id)
                if state is not None:
                    state.fault, state.fault_ends = entry.faults, entry.ends_at
                return entry
            case ClientLabelled():
                state = self._clients.get(entry.client_id)
                if state is not None:
                    state.label = entry.label
                return entry
            case _:
                return entry

    def _received(self, moved: Moved) -> DataReceived | None:
        state = self._clients.get(moved.client_id)
        if state is None:  # its connect is before a kept part: shown from its first bytes
            state = self._clients[moved.client_id] = ClientState(
                client_id=moved.client_id, peer=("0.0.0.0", 0), connected_at=moved.at, last_activity=moved.at
            )
        framing = self.config.framing
        if framing is Framing.CHUNK:
            messages = 1
        else:
            framer = self._framers.get(moved.client_id)
            if framer is None:
                framer = self._framers[moved.client_id] = Framer(framing, self.config.max_frame)
            messages = sum(1 for piece in framer.feed(moved.data) if piece.kind is not Kind.NOISE)
        state.messages_in += messages
        state.bytes_in += moved.size
        state.last_activity = moved.at
        return DataReceived(
            client_id=moved.client_id,
            data=moved.data[:EVENT_DATA_BYTES],
            size=moved.size,
            at=moved.at,
            messages=messages,
            messages_in=state.messages_in,
            bytes_in=state.bytes_in,
            bytes_out=state.bytes_out,
        )

    def clients(self) -> list[ClientState]:
        return list(self._clients.values())

    def totals(self) -> ServerTotals:
        live = self._clients.values()
        return replace(
            self._totals,
            clients_now=len(self._clients),
            messages_in=self._gone_messages + sum(c.messages_in for c in live),
            bytes_in=self._gone_in + sum(c.bytes_in for c in live),
            bytes_out=self._gone_out + sum(c.bytes_out for c in live),
        )


def _describe_gap(gap: Gap) -> str:
    clients = ", ".join(f"#{n}" for n in gap.clients) or "no client"
    return (
        f"the recording lacks {format_size(gap.bytes_in)} in and {format_size(gap.bytes_out)} out of {clients} "
        f"from {utc_time(gap.start)} to {utc_time(gap.end)} ({gap.why})"
    )
