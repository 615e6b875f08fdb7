"""Reading a recording back: its records in order, decoded, and each client's two streams of bytes.

Several files (the parts of a rotated recording, or one file per worker) are
read together, their records merged by time: ``FILE.2 FILE.1 FILE`` or any
order, since each record carries its time. A line that is not a record, or a
record of an unknown kind, is an error with its file and line (a recording
is written whole lines at a time: a damaged one is not a recording).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from tui_echo.net import Peer
from tui_echo.server.events import ClientConnected, ClientDisconnected, DisconnectReason, ServerEvent
from tui_echo.wire.events import decode_event
from tui_echo.wire.recording import Gap, Moved, RecordingHeader, decode_gap, decode_header, decode_moved

Entry: TypeAlias = RecordingHeader | Moved | Gap | ServerEvent


class RecordingError(Exception):
    """A file that is not a recording this tui-echo reads; the message names the file and line."""


def _entries(path: Path) -> Iterator[tuple[float, int, Entry]]:
    try:
        file = path.open("rb")
    except OSError as exc:
        raise RecordingError(f"{path}: {exc.strerror or exc}") from None
    with file:
        for number, line in enumerate(file, 1):
            try:
                record = json.loads(line)
                entry = decode(record)
            except (ValueError, KeyError, TypeError) as exc:
                raise RecordingError(f"{path} line {number}: not a recording's record ({exc})") from None
            if number == 1 and not isinstance(entry, RecordingHeader):
                raise RecordingError(f"{path}: not a tui-echo recording (its first line is no recording header)")
            if entry is not None:
                yield entry.at, number, entry


def decode(record: object) -> Entry | None:
    """One record of a recording; None for a record it may hold that is no event (a data summary)."""
    if not isinstance(record, dict):
        raise TypeError("a record is a JSON object")
    kind = record.get("event")
    if kind == "recording":
        return decode_header(record)
    if kind in ("in", "out"):
        return decode_moved(record)
    if kind == "gap":
        return decode_gap(record)
    if kind not in ("listening", "connected", "disconnected", "notice", "stopped", "refused", "refused_summary"):
        raise ValueError(f"unknown record {kind!r}")
    return decode_event(record)


def read(paths: Iterable[str]) -> Iterator[Entry]:
    """Every record of these files, merged by time (a file's own order kept for equal times)."""
    files = [_entries(Path(path)) for path in paths]
    for _at, _file, _line, entry in heapq.merge(
        *[((at, index, line, entry) for at, line, entry in file) for index, file in enumerate(files)],
        key=lambda item: (item[0], item[1], item[2]),
    ):
        yield entry


@dataclass
class ClientStream:
    """One client as recorded: where from, when, its bytes both ways in order, and how it ended."""

    client_id: int
    peer: Peer
    connected_at: float
    moved: list[tuple[float, bool, bytes]] = field(default_factory=list)  # (time, incoming, bytes)
    ended: ClientDisconnected | None = None

    @property
    def received(self) -> bytes:
        return b"".join(data for _at, incoming, data in self.moved if incoming)

    @property
    def sent(self) -> bytes:
        return b"".join(data for _at, incoming, data in self.moved if not incoming)

    @property
    def reset(self) -> bool:
        """Whether it ended with a reset (RST) rather than a close (FIN)."""
        ended = self.ended
        return ended is not None and ended.reason is DisconnectReason.ERROR and "reset" in ended.error.lower()


@dataclass
class Recording:
    headers: list[RecordingHeader]
    clients: dict[int, ClientStream]
    gaps: list[Gap]
    events: list[ServerEvent]


def load(paths: Iterable[str]) -> Recording:
    """A whole recording in memory: its headers, each client's streams, its gaps, its events."""
    headers: list[RecordingHeader] = []
    clients: dict[int, ClientStream] = {}
    gaps: list[Gap] = []
    events: list[ServerEvent] = []
    last_in: dict[int, bytes] = {}
    for entry in read(paths):
        if isinstance(entry, RecordingHeader):
            headers.append(entry)
        elif isinstance(entry, Gap):
            gaps.append(entry)
        elif isinstance(entry, Moved):
            stream = clients.get(entry.client_id)
            if stream is None:  # its connect is in a part no longer kept
                stream = clients[entry.client_id] = ClientStream(entry.client_id, ("0.0.0.0", 0), entry.at)
            data = last_in.get(entry.client_id, b"") if entry.echoed else entry.data
            if entry.incoming:
                last_in[entry.client_id] = entry.data
            stream.moved.append((entry.at, entry.incoming, data))
        else:
            events.append(entry)
            if isinstance(entry, ClientConnected):
                clients[entry.client_id] = ClientStream(entry.client_id, entry.peer, entry.at)
            elif isinstance(entry, ClientDisconnected) and entry.client_id in clients:
                clients[entry.client_id].ended = entry
    if not headers:
        raise RecordingError("no recording header in any file")
    return Recording(headers, clients, gaps, events)
