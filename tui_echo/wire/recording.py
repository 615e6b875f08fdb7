"""The records of a recording (``--record``) that are not events: its header, the bytes, and a gap.

A recording is JSON Lines in the one vocabulary the log and the control
protocol use: its lifecycle lines are those events' own records
(``wire.events``), and these add what only a recording has. One encode and
one decode per kind, side by side:

- ``recording``: the first line of every part: the format, the part's number,
  and the server's settings (``encode_setup``'s fields);
- ``in`` / ``out``: a client's bytes, whole (``data_b64``), as its connection
  moved them; an ``out`` that is an echo of the last ``in`` says ``echoed``
  and carries no second copy;
- ``gap``: what a recording lacks (the writer could not keep up, or the disk
  failed): which clients, how many bytes each way, from when to when, why.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_echo.net import Peer
from tui_echo.server.config import ServerConfig
from tui_echo.times import utc_time
from tui_echo.wire.records import (
    Fields,
    Record,
    exact_data,
    read_bool,
    read_data,
    read_int,
    read_int_list,
    read_str,
    read_time,
)
from tui_echo.wire.settings import decode_setup, encode_setup

FORMAT = 1  # a reader refuses a recording of a later format with one line


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    at: float
    part: int  # 1 for the first file of a recording; each rotation adds one
    addresses: tuple[Peer, ...]
    config: ServerConfig
    control: str = ""


@dataclass(frozen=True, slots=True)
class Moved:
    """Bytes a client's connection received (``incoming``) or wrote whole."""

    client_id: int
    at: float
    incoming: bool
    data: bytes  # empty for an echo: the bytes are the client's last ``in``
    size: int
    echoed: bool = False


@dataclass(frozen=True, slots=True)
class Gap:
    """What the recording lacks between ``start`` and ``end``."""

    at: float
    start: float
    end: float
    clients: tuple[int, ...]
    bytes_in: int
    bytes_out: int
    records: int  # records not written (bytes, events)
    why: str


def encode_header(header: RecordingHeader) -> Record:
    return {
        "event": "recording",
        "time": utc_time(header.at),
        "format": FORMAT,
        "part": header.part,
        **encode_setup(header.addresses, header.config, header.control),
    }


def decode_header(record: Fields) -> RecordingHeader:
    if read_int(record, "format") > FORMAT:
        raise ValueError(f"a recording of format {record['format']}; this tui-echo reads format {FORMAT}")
    addresses, config, control = decode_setup(record)
    return RecordingHeader(read_time(record), read_int(record, "part"), addresses, config, control)


class MovedLines:
    """Encodes ``in``/``out`` records as whole JSON lines, fast: the writer makes two for every chunk echoed.

    The one encoder of the kind (``decode_moved`` reads what it writes; a test holds them to each other).
    A record's time is the same text for every record within one millisecond, so it is made once for them.
    """

    __slots__ = ("_ms", "_time")

    def __init__(self) -> None:
        self._ms = -1
        self._time = ""

    def line(
        self, client_id: int, at: float, incoming: bool, data: bytes | bytearray | memoryview, echoed: bool
    ) -> bytes:
        """The record of a ``Moved(client_id, at, incoming, data, len(data), echoed)`` (an echo's data unwritten)."""
        ms = int(at * 1000)
        if ms != self._ms:
            self._ms, self._time = ms, utc_time(at)
        head = (
            f'{{"event":"{"in" if incoming else "out"}","time":"{self._time}","client":{client_id},"len":{len(data)},'
        )
        if echoed:
            return f'{head}"echoed":true}}\n'.encode()
        return f'{head}"data_b64":"{exact_data(bytes(data))}"}}\n'.encode()


def decode_moved(record: Fields) -> Moved:
    echoed = read_bool(record, "echoed") if "echoed" in record else False
    data = b"" if echoed else read_data(record)
    size = read_int(record, "len")
    if not echoed and len(data) != size:
        raise ValueError(f"len {size} but {len(data)} bytes")
    return Moved(read_int(record, "client"), read_time(record), read_str(record, "event") == "in", data, size, echoed)


def encode_gap(gap: Gap) -> Record:
    return {
        "event": "gap",
        "time": utc_time(gap.at),
        "from": utc_time(gap.start),
        "to": utc_time(gap.end),
        "clients": list(gap.clients),
        "bytes_in": gap.bytes_in,
        "bytes_out": gap.bytes_out,
        "records": gap.records,
        "why": gap.why,
    }


def decode_gap(record: Fields) -> Gap:
    return Gap(
        at=read_time(record),
        start=read_time(record, "from"),
        end=read_time(record, "to"),
        clients=tuple(read_int_list(record, "clients")),
        bytes_in=read_int(record, "bytes_in"),
        bytes_out=read_int(record, "bytes_out"),
        records=read_int(record, "records"),
        why=read_str(record, "why"),
    )
