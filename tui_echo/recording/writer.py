"""The recording writer: the taps' bytes and the server's lifecycle events, as JSON Lines, never stalling the echo.

The taps and the event path call in synchronously (``received``, ``sent``,
``lifecycle``); each call encodes one line and appends it to the batch in
memory. A task writes batches in a worker thread, so a slow disk never blocks
the event loop. Memory in flight is bounded (``buffer_bytes``): past it, and
while the disk refuses writes, bytes are not kept but counted, per client,
into a gap that is written as a record of its own as soon as the file takes
writes again (and at the end). A recording is so complete or says exactly
what it lacks. Lifecycle lines (connects, disconnects, notices) are always
queued: at most two per client.

Rotation (``max_bytes``, ``keep``): the file in use is PATH; when a batch
would take it past ``max_bytes`` it becomes PATH.1 (PATH.1 becomes PATH.2 …,
the oldest beyond ``keep`` is removed) and a new PATH starts with a header of
the next part. Files are created 0600.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from tui_echo.net import Peer, format_address
from tui_echo.server.config import ServerConfig
from tui_echo.server.events import ClientConnected, ServerEvent
from tui_echo.wire.events import encode_event
from tui_echo.wire.recording import Gap, MovedLines, RecordingHeader, encode_gap, encode_header
from tui_echo.wire.records import to_json

RECORD_BUFFER_BYTES = 16 << 20  # encoded lines waiting for the disk before bytes go into a gap
RETRY_SECONDS = 1.0  # after a failed write, how long before the next try
GATHER_SECONDS = 0.02  # lines gather this long into one write (one thread hop for many records)


@dataclass(frozen=True, slots=True)
class RecordSettings:
    """--record FILE, --record-max-bytes, --record-keep."""

    path: str
    max_bytes: int | None = None
    keep: int = 3


@dataclass
class _Batch:
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    clients: set[int] = field(default_factory=set)
    bytes_in: int = 0
    bytes_out: int = 0
    start: float = 0.0
    end: float = 0.0

    def add(self, line: bytes, client_id: int, bytes_in: int, bytes_out: int, at: float) -> None:
        if not self.lines:
            self.start = at
        self.lines.append(line)
        self.size += len(line)
        self.end = at
        if client_id:
            self.clients.add(client_id)
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out


@dataclass
class _Gap:
    why: str
    start: float
    end: float = 0.0
    clients: set[int] = field(default_factory=set)
    bytes_in: int = 0
    bytes_out: int = 0
    records: int = 0

    def lose(self, client_id: int, bytes_in: int, bytes_out: int, records: int, at: float) -> None:
        if client_id:
            self.clients.add(client_id)
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        self.records += records
        self.end = max(self.end, at)

    def record(self, at: float) -> bytes:
        gap = Gap(at, self.start, max(self.end, self.start), tuple(sorted(self.clients)), self.bytes_in,
                  self.bytes_out, self.records, self.why)  # fmt: skip
        return (to_json(encode_gap(gap)) + "\n").encode()


class RecordingWriter:
    """One recording: a RecordSink for the taps, ``lifecycle`` for events, ``run`` writes, ``close`` ends it."""

    def __init__(
        self,
        path: str,
        addresses: tuple[Peer, ...],
        config: ServerConfig,
        *,
        control: str = "",
        say: Callable[[str], None] = lambda message: None,
        max_bytes: int | None = None,
        keep: int = 3,
        buffer_bytes: int = RECORD_BUFFER_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path).absolute()  # relative to the server's working directory, once
        self._addresses, self._config, self._control = addresses, config, control
        self._say = say
        self._max_bytes, self._keep, self._limit = max_bytes, keep, buffer_bytes
        self._clock = clock
        self._batch = _Batch()
        self._gap: _Gap | None = None
        self._failed = False  # the last write failed: nothing is kept until the gap is written
        self._closing = False
        self._closed = False
        self._wake = trio.Event()
        self._peers: dict[int, str] = {}
        self._lines = MovedLines()
        self._fd = -1
        self._size = 0
        self._part = 0
        self.gaps = 0  # gap records written
        self.lost_bytes = 0  # client bytes the recording lacks (in its gap records)

    # ---- the file --------------------------------------------------------------------------

    def open(self) -> None:
        """Create the file (0600) and write its header; raises OSError with the reason (one line for a user)."""
        self._open_part()

    def _open_part(self) -> None:
        self._part += 1
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
        header = RecordingHeader(self._clock(), self._part, self._addresses, self._config, self._control)
        line = (to_json(encode_header(header)) + "\n").encode()
        try:
            os.write(fd, line)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._size = fd, len(line)

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = -1
        for part in range(self._keep, 0, -1):
            older = Path(f"{self.path}.{part}")
            if part == self._keep:
                older.unlink(missing_ok=True)
            elif older.exists():
                older.rename(f"{self.path}.{part + 1}")
        if self._keep:
            self.path.rename(f"{self.path}.1")
        self._open_part()

    def _write(self, lines: list[bytes]) -> None:
        """In a worker thread: write ``lines``, rotating before a line that would take the file past
        ``max_bytes``; a write that fails is cut back off, so the file always ends with a whole line."""
        limit = self._max_bytes
        if limit is None:
            self._write_all(b"".join(lines))
            return
        start = 0
        room = limit - self._size
        for end, line in enumerate(lines):
            if len(line) > room and end > start:
                self._write_all(b"".join(lines[start:end]))
                start, room = end, 0
            if len(line) > room and self._size > 0 and start == end:
                self._rotate()
                room = limit - self._size
            room -= len(line)
        self._write_all(b"".join(lines[start:]))

    def _write_all(self, data: bytes) -> None:
        good = self._size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            os.ftruncate(self._fd, good)  # what did go in is cut off: the file ends at a whole line
            os.lseek(self._fd, good, os.SEEK_SET)
            raise
        self._size = good + len(data)

    # ---- what the taps and the event path hand in (synchronous, never waits) ----------------------

    def received(self, client_id: int, data: bytes | bytearray) -> None:
        self._moved(client_id, True, data, False)

    def sent(self, client_id: int, data: bytes | bytearray | memoryview, echoed: bool) -> None:
        self._moved(client_id, False, data, echoed)

    def _moved(self, client_id: int, incoming: bool, data: bytes | bytearray | memoryview, echoed: bool) -> None:
        """Two for every chunk echoed: kept lean (no record object, the line written at once)."""
        if self._closed:
            return
        at = self._clock()
        size = len(data)
        batch = self._batch
        if self._gap is not None or batch.size >= self._limit:
            self._lose(client_id, size if incoming else 0, 0 if incoming else size, at, "the writer could not keep up")
            return
        line = self._lines.line(client_id, at, incoming, data, echoed)
        if not batch.lines:
            batch.start = at
            self._wake.set()
        batch.lines.append(line)
        batch.size += len(line)
        batch.end = at
        batch.clients.add(client_id)
        if incoming:
            batch.bytes_in += size
        else:
            batch.bytes_out += size

    def lifecycle(self, event: ServerEvent) -> None:
        if self._closed:
            return
        client_id = getattr(event, "client_id", 0)
        if isinstance(event, ClientConnected):
            self._peers[client_id] = format_address(event.peer)
        record = encode_event(event, peer=self._peers.get(client_id, ""))
        line = (to_json(record) + "\n").encode()
        self._keep_line(line, client_id, 0, 0, getattr(event, "at", self._clock()), always=True)

    def _keep_line(
        self, line: bytes, client_id: int, bytes_in: int, bytes_out: int, at: float, *, always: bool = False
    ) -> None:
        if self._gap is not None and not always:
            self._lose(client_id, bytes_in, bytes_out, at, self._gap.why)
            return
        self._batch.add(line, client_id, bytes_in, bytes_out, at)
        self._wake.set()

    def _lose(self, client_id: int, bytes_in: int, bytes_out: int, at: float, why: str) -> None:
        if self._gap is None:
            self._gap = _Gap(why, at)
            self._say(f"recording {self.path}: {why}; what it lacks is written as a gap record")
            self._wake.set()
        self._gap.lose(client_id, bytes_in, bytes_out, 1, at)

    # ---- the writing task ----------------------------------------------------------------------

    async def run(self) -> None:
        """Write batches until closed (then the last batch and any gap), then close the file."""
        try:
            while True:
                if not self._batch.lines and self._gap is None:
                    if self._closing:
                        break
                    await self._wake.wait()
                    self._wake = trio.Event()
                    continue
                if not self._closing and self._batch.size < self._limit // 2:
                    await trio.sleep(GATHER_SECONDS)
                wrote = await self._flush()
                if not wrote:
                    if self._closing:
                        break  # the disk takes nothing: the notice said so
                    with trio.move_on_after(RETRY_SECONDS):
                        while not self._closing:
                            await self._wake.wait()
                            self._wake = trio.Event()
        finally:
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    async def _flush(self) -> bool:
        """Write any open gap's record, then the batch; if the batch fails, its gap's record at once (it is
        small, and the failed write was cut back off, which frees room for it). False if a write failed."""
        if self._gap is not None and not await self._write_gap():
            return False
        batch, self._batch = self._batch, _Batch()
        if not batch.lines:
            return True
        try:
            await trio.to_thread.run_sync(self._write, batch.lines)
        except OSError as exc:
            self._failed_write(batch, exc)
            await self._write_gap()
            return False
        if self._failed:
            self._failed = False
            self._say(f"recording {self.path}: writing again")
        return True

    async def _write_gap(self) -> bool:
        gap = self._gap
        assert gap is not None
        self._gap = None  # what comes meanwhile is kept again (after the gap record)
        try:
            await trio.to_thread.run_sync(self._write, [gap.record(self._clock())])
        except OSError as exc:
            if self._gap is not None:  # lost meanwhile: into the same gap
                gap.lose(0, self._gap.bytes_in, self._gap.bytes_out, self._gap.records, self._gap.end)
                gap.clients |= self._gap.clients
            self._gap = gap
            self._note_failure(exc)
            return False
        self.gaps += 1
        self.lost_bytes += gap.bytes_in + gap.bytes_out
        return True

    def _failed_write(self, batch: _Batch, exc: OSError) -> None:
        why = f"cannot write: {exc.strerror or exc}"
        if self._gap is None:
            self._gap = _Gap(why, batch.start)
        gap = self._gap
        gap.start = min(gap.start, batch.start)
        gap.lose(0, batch.bytes_in, batch.bytes_out, len(batch.lines), batch.end)
        gap.clients |= batch.clients
        self._note_failure(exc)

    def _note_failure(self, exc: OSError) -> None:
        if not self._failed:
            self._failed = True
            full = exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
            more = " (the disk is full)" if full else ""
            self._say(
                f"recording {self.path}: cannot write{more}: {exc.strerror or exc}; "
                f"the echo goes on, and what the recording lacks is written as a gap record once it can be"
            )

    def close(self) -> None:
        """Stop taking records; ``run`` writes what it holds and ends."""
        self._closing = True
        self._wake.set()
