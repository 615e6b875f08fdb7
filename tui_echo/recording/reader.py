"""Reading a recording back: its records in order, decoded, and each client's two streams of bytes.

Several files (the parts of a rotated recording, or one file per worker) are
read together, their records merged by time: ``FILE.2 FILE.1 FILE`` or any
order, since each record carries its time. A line that is not a record, or a
record of an unknown kind, is an error with its file and line (a recording
is written whole lines at a time: a damaged one is not a recording).
"""

from __future__ import annotations

import heapq
import itertools
import ipaddress
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
_Keyed: TypeAlias = tuple[float, int, int, int, Entry]  # time, part, file, line: the order records are read in


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


# What a recording holds of the server's events: every lifecycle event (``EventOutbox.lifecycle``).
_LIFECYCLE = frozenset(
    {
        "listening",
        "connected",
        "disconnected",
        "notice",
        "stopped",
        "refused",
        "refused_summary",
        "broadcast",
        "labelled",
        "fault",
    }
)


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
    if kind not in _LIFECYCLE:
        raise ValueError(f"unknown record {kind!r}")
    return decode_event(record)


def read(paths: Iterable[str]) -> Iterator[tuple[int, Entry]]:
    """Every record of these files with its file's index, merged by time; a file's own order is kept, and
    for equal times an earlier part of a rotated recording comes first (its header's part number)."""
    files = []
    for path in paths:
        entries = _entries(Path(path))
        first = next(entries, None)
        if first is None:
            raise RecordingError(f"{path}: empty")
        header = first[2]
        assert isinstance(header, RecordingHeader)
        files.append((header.part, itertools.chain([first], entries)))

    def keyed(index: int, part: int, file: Iterator[tuple[float, int, Entry]]) -> Iterator[_Keyed]:
        for at, line, entry in file:
            yield at, part, index, line, entry

    keyed_files = [keyed(index, part, file) for index, (part, file) in enumerate(files)]
    for _at, _part, index, _line, entry in heapq.merge(*keyed_files, key=lambda item: item[:4]):
        yield index, entry


@dataclass
class ClientStream:
    """One client as recorded: where from, when, its bytes both ways in order, and how it ended."""

    client_id: int
    peer: Peer
    server: Peer  # the listening address it came to (of its address family)
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
    clients: dict[tuple[Peer, int], ClientStream]  # by (the server's first address, client id): files may be servers
    gaps: list[Gap]
    events: list[ServerEvent]

    def client(self, client_id: int) -> ClientStream:
        """The one client with this id (KeyError if none; ValueError if several servers had one)."""
        found = [stream for (_server, number), stream in self.clients.items() if number == client_id]
        if len(found) > 1:
            raise ValueError(f"#{client_id} is in several servers' recordings")
        return found[0] if found else self.clients[("", 0), client_id]


def _server_address(addresses: tuple[Peer, ...], peer: Peer) -> Peer:
    """The listening address a client came to: the first of its address family."""
    version = ipaddress.ip_address(peer[0]).version
    return next((a for a in addresses if ipaddress.ip_address(a[0]).version == version), addresses[0])


def load(paths: Iterable[str]) -> Recording:
    """A whole recording in memory: its headers, each client's streams, its gaps, its events.

    Files of one server (its rotated parts) join up; files of several servers (one per worker, or any
    recordings) are merged by time, each client keyed by its server."""
    headers: list[RecordingHeader] = []
    servers: dict[int, tuple[Peer, ...]] = {}  # each file's listening addresses, from its header
    clients: dict[tuple[Peer, int], ClientStream] = {}
    gaps: list[Gap] = []
    events: list[ServerEvent] = []
    last_in: dict[tuple[Peer, int], bytes] = {}
    for index, entry in read(paths):
        if isinstance(entry, RecordingHeader):
            headers.append(entry)
            servers[index] = entry.addresses
            continue
        addresses = servers[index]
        if isinstance(entry, Gap):
            gaps.append(entry)
        elif isinstance(entry, Moved):
            key = (addresses[0], entry.client_id)
            stream = clients.get(key)
            if stream is None:  # its connect is in a part no longer kept
                stream = clients[key] = ClientStream(entry.client_id, ("0.0.0.0", 0), addresses[0], entry.at)
            data = last_in.get(key, b"") if entry.echoed else entry.data
            if entry.incoming:
                last_in[key] = entry.data
            stream.moved.append((entry.at, entry.incoming, data))
        else:
            events.append(entry)
            key = (addresses[0], getattr(entry, "client_id", 0))
            if isinstance(entry, ClientConnected):
                server = _server_address(addresses, entry.peer)
                clients[key] = ClientStream(entry.client_id, entry.peer, server, entry.at)
            elif isinstance(entry, ClientDisconnected) and key in clients:
                clients[key].ended = entry
    if not headers:
        raise RecordingError("no recording header in any file")
    return Recording(headers, clients, gaps, events)
