"""Framing: what one message is, for a protocol whose messages are not reads (``--framing``).

Pure logic, no trio. A ``Framer`` is one client's reassembly: it takes the
chunks as they arrive and gives back whole pieces, each a frame exactly as it
was on the wire (its STX and ETX, its length prefix, its newline included),
bytes outside any frame (noise before an STX), or part of a frame longer than
``--max-frame``, cut there. Its buffer holds at most one unfinished frame,
so at most ``max_frame`` bytes (plus a length prefix's header) per client.

Chunk framing needs no framer (a chunk is a message), and the plain echo
counts lines itself; every other framing, and line framing wherever a whole
line matters (rules, chat), goes through one.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

from tui_echo.server.config import Framing

STX = 0x02
ETX = 0x03

# The header of each length-prefixed framing: its struct format (the payload's length, the header excluded).
LENGTH_HEADERS: dict[Framing, struct.Struct] = {
    Framing.LEN_U8: struct.Struct(">B"),
    Framing.LEN_U16BE: struct.Struct(">H"),
    Framing.LEN_U16LE: struct.Struct("<H"),
    Framing.LEN_U32BE: struct.Struct(">I"),
    Framing.LEN_U32LE: struct.Struct("<I"),
}


class Kind(IntEnum):
    FRAME = 0  # a whole frame
    CUT = 1  # part of a frame longer than --max-frame: a message as it is
    NOISE = 2  # bytes outside any frame (before an STX): shown and counted, never a message


class Piece(NamedTuple):
    data: bytes
    kind: Kind


class Framer:
    """One client's frames: ``feed`` each chunk, get the pieces it completed; ``rest`` at the end."""

    __slots__ = ("_framing", "_max", "_buffer", "_inside", "_header", "_left", "_was_cut")

    def __init__(self, framing: Framing, max_frame: int) -> None:
        if framing is Framing.CHUNK:
            raise ValueError("chunk framing needs no framer: a chunk is a message")
        self._framing = framing
        self._max = max_frame
        self._buffer = bytearray()  # the unfinished frame, as received
        self._inside = False  # stx-etx: an STX has been seen and its ETX not yet
        self._header = LENGTH_HEADERS.get(framing)
        self._left = -1  # length prefix: bytes of the current frame still to come; -1 while reading its header
        self._was_cut = False  # the current frame has been cut: its end is a cut piece too

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Piece]:
        if self._framing is Framing.LINE:
            return self._lines(bytes(data))
        if self._framing is Framing.STX_ETX:
            return self._stx_etx(bytes(data))
        return self._prefixed(bytes(data))

    def rest(self) -> Piece | None:
        """What an unfinished frame held when the client ended (a message cut short), then nothing."""
        if not self._buffer:
            return None
        piece = Piece(bytes(self._buffer), Kind.CUT)
        self._buffer.clear()
        self._inside = False
        self._left = -1
        self._was_cut = False
        return piece

    def _cut(self, pieces: list[Piece]) -> None:
        """The buffer has reached --max-frame: it is a message as it is (the frame goes on after it)."""
        while len(self._buffer) >= self._max:
            pieces.append(Piece(bytes(self._buffer[: self._max]), Kind.CUT))
            del self._buffer[: self._max]
            self._was_cut = True

    def _lines(self, data: bytes) -> list[Piece]:
        pieces: list[Piece] = []
        buffer = self._buffer
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if buffer:
                buffer += data[start : end + 1]
                line = bytes(buffer)
                buffer.clear()
                pieces.extend(self._bounded(line))
            else:
                pieces.extend(self._bounded(data[start : end + 1]))
            start = end + 1
        if start < len(data):
            buffer += data[start:]
            self._cut(pieces)
        return pieces

    def _bounded(self, frame: bytes) -> list[Piece]:
        """A whole frame, or, past --max-frame, its pieces of at most that much, each cut."""
        limit = self._max
        if self._was_cut:
            self._was_cut = False
            if len(frame) <= limit:
                return [Piece(frame, Kind.CUT)] if frame else []
        elif len(frame) <= limit:
            return [Piece(frame, Kind.FRAME)]
        return [Piece(frame[at : at + limit], Kind.CUT) for at in range(0, len(frame), limit)]

    def _stx_etx(self, data: bytes) -> list[Piece]:
        pieces: list[Piece] = []
        buffer = self._buffer
        start, size = 0, len(data)
        while start < size:
            if not self._inside:
                stx = data.find(b"\x02", start)
                if stx < 0:
                    pieces.append(Piece(data[start:], Kind.NOISE))
                    break
                if stx > start:
                    pieces.append(Piece(data[start:stx], Kind.NOISE))
                self._inside = True
                buffer.append(STX)
                start = stx + 1
                continue
            etx = data.find(b"\x03", start)
            if etx < 0:
                buffer += data[start:]
                self._cut(pieces)
                break
            buffer += data[start : etx + 1]
            frame = bytes(buffer)
            buffer.clear()
            self._inside = False
            pieces.extend(self._bounded(frame))
            start = etx + 1
        return pieces

    def _prefixed(self, data: bytes) -> list[Piece]:
        header = self._header
        assert header is not None
        pieces: list[Piece] = []
        buffer = self._buffer
        view = memoryview(data)
        while view:
            if self._left < 0:  # the header, possibly in parts
                need = header.size - len(buffer)
                buffer += view[:need]
                view = view[need:]
                if len(buffer) < header.size:
                    break
                (self._left,) = header.unpack_from(buffer)
            take = min(self._left, len(view))
            buffer += view[:take]
            view = view[take:]
            self._left -= take
            if self._left == 0:
                frame = bytes(buffer)
                buffer.clear()
                self._left = -1
                pieces.extend(self._bounded(frame))
            else:
                self._cut(pieces)
        return pieces
