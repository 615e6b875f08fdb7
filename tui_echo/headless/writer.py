"""The log's writer: a thread of its own writes the log to a file descriptor, so no write can hold up trio.

A write to a pipe nobody reads never returns, and a ``trio.to_thread`` call
cannot be cancelled: the server could not stop. Here one dedicated thread
owns the blocking ``os.write``. The trio side only appends to a bounded
queue, waits (cancellably) for room, and at the end gives the thread a
bounded time to finish before abandoning it. ``sys.stdout`` is never
written, so its buffer stays empty and the interpreter's flush at exit has
nothing to block on.

When the queue is full (``QUEUE_BYTES``):

- data lines (a client's data, busy summaries) are dropped and counted as
  lost once the queue is half full, so lifecycle lines always have room;
- lifecycle lines (listening, connect, disconnect, refusal, notice, stopped)
  wait for room: the log's consumer pauses and, through the server's bounded
  event path, so does accept (never the echo). After ``give_up_at`` (set
  when the server is told to stop) they are counted as lost instead.

A write that fails (a full disk, ``/dev/full``, a file-size limit) loses its
lines, which are counted, and the server keeps serving; later lines are
tried again, in case space comes back. A reader that went away (EPIPE, or
EIO from a vanished terminal) sets ``reader_gone``: the log ends there.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import select
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import trio

QUEUE_BYTES = 1 << 20  # log text waiting for the writer (about 10,000 human lines)
DATA_QUEUE_BYTES = QUEUE_BYTES // 2  # data lines are dropped past this: lifecycle lines keep the other half
CLOSE_GRACE_SECONDS = 0.2  # at the end, a writer gets at least this long to write the last lines
_READER_GONE = frozenset({errno.EPIPE, errno.EIO})  # EIO: the terminal is gone


def say(line: str) -> None:
    """Write one line on stderr, unless that could block: stderr may be the very pipe that stalls the log."""
    with contextlib.suppress(OSError):  # stderr is closed or full too: there is nobody to tell
        if select.select([], [2], [], 0)[1]:
            os.write(2, f"{line}\n".encode(errors="backslashreplace"))


class LogWriter:
    """Queue log lines for a writer thread; ``lines_lost`` counts the lines that never made it out."""

    def __init__(self, fd: int, encoding: str = "utf-8") -> None:
        self._fd = fd
        self._encoding = encoding
        self._lock = threading.Condition()
        # Chunks stay queued (and counted) until written: the bound covers the write in flight too.
        self._queue: deque[tuple[bytes, int]] = deque()  # (text, lines in it)
        self._queued_bytes = 0
        self._closing = False
        self._finished = False
        self._torn = False  # a failed write left half a line: start the next one on a fresh line
        self._flight: _Batch | None = None  # the batch being written
        self.abandoned = False  # closed while the thread was still writing (or had lines to write)
        self.lines_lost = 0
        self.error: OSError | None = None  # the first write error that lost lines
        self.reader_gone = False
        self.give_up_at = math.inf  # trio clock: past it, nothing waits for the writer any more
        self._token = trio.lowlevel.current_trio_token()
        self._changed = trio.Event()
        threading.Thread(target=self._run, name="tui-echo log writer", daemon=True).start()

    # ---- trio side -------------------------------------------------------

    def offer(self, lines: Sequence[str]) -> None:
        """Queue data lines if the queue is less than half full; drop and count them if not."""
        if lines and not self._try_queue(lines, DATA_QUEUE_BYTES):
            self._count_lost(len(lines))

    async def put(self, lines: Sequence[str]) -> None:
        """Queue lifecycle lines, waiting for room until ``give_up_at``; then they are counted as lost."""
        if not lines:
            return
        while not self._try_queue(lines, QUEUE_BYTES):
            if trio.current_time() >= self.give_up_at:
                self._count_lost(len(lines))
                return
            with trio.move_on_at(self.give_up_at):
                await self._changed.wait()

    def give_up_after(self, seconds: float) -> None:
        """Stop waiting for the writer ``seconds`` from now (or earlier, if already set so)."""
        self.give_up_at = min(self.give_up_at, trio.current_time() + seconds)
        self._signal_change()

    async def aclose(self, seconds: float) -> None:
        """Let the thread write what is queued, for at most ``seconds`` and not past ``give_up_at``, but for
        at least ``CLOSE_GRACE_SECONDS``: the last lines may come after the give-up time (a stopping
        server waits for clients that were closing already), and a writer that is keeping up needs only
        moments to write them.

        Then, or if cancelled, abandon it: whatever is still queued is counted
        as lost, and ``abandoned`` says that the thread may still be blocked
        in a write, which the process must not wait for at exit.
        """
        now = trio.current_time()
        deadline = max(min(self.give_up_at, now + seconds), now + CLOSE_GRACE_SECONDS)
        self.give_up_at = min(self.give_up_at, deadline)  # nothing else waits for the writer from now on
        with self._lock:
            self._closing = True
            self._lock.notify()
        try:
            while not self._finished and trio.current_time() < deadline:
                with trio.move_on_at(deadline):
                    await self._changed.wait()
        finally:
            with self._lock:
                if not self._finished:
                    self.abandoned = True
                    written = self._flight.lines_written() if self._flight else 0
                    self.lines_lost += sum(lines for _, lines in self._queue) - written
                    self._queue.clear()

    def _try_queue(self, lines: Sequence[str], limit: int) -> bool:
        if self.reader_gone:
            return True  # nobody reads the log any more: nothing to keep or count
        text = ("\n".join(lines) + "\n").encode(self._encoding, errors="backslashreplace")
        with self._lock:
            if self._queued_bytes and self._queued_bytes + len(text) > limit:
                return False
            self._queue.append((text, len(lines)))
            self._queued_bytes += len(text)
            self._lock.notify()
        return True

    def _count_lost(self, lines: int) -> None:
        with self._lock:
            self.lines_lost += lines

    def _signal_change(self) -> None:
        # Wake every waiter; later waiters wait on a fresh event.
        self._changed.set()
        self._changed = trio.Event()

    # ---- the writer thread -----------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._lock.wait()
                if not self._queue or self.abandoned:
                    self._finished = True
                    break
                # Everything queued, in one batch; it stays queued (and counted) until written.
                chunks = len(self._queue)
                batch = self._flight = _Batch(
                    data=(b"\n" if self._torn else b"") + b"".join(text for text, _ in self._queue),
                    prefix=1 if self._torn else 0,
                    lines=sum(lines for _, lines in self._queue),
                )
            error = self._write(batch)
            with self._lock:
                if self.abandoned:
                    return  # counted as lost when it was abandoned
                self._flight = None
                for _ in range(chunks):
                    self._queue.popleft()
                self._queued_bytes -= len(batch.data) - batch.prefix
                if error is not None and error.errno in _READER_GONE:
                    self.reader_gone = True
                    self._queue.clear()
                    self._queued_bytes = 0
                    self._finished = True
                    break
                if error is not None:
                    self.lines_lost += batch.lines - batch.lines_written()
                    self.error = self.error or error
                if batch.written:
                    self._torn = batch.data[batch.written - 1] != ord("\n")
            self._notify_trio()
        self._notify_trio()

    def _write(self, batch: _Batch) -> OSError | None:
        """Write the batch, recording progress in it; return the error that stopped it, if any.

        Pieces of at most PIPE_BUF bytes: to a pipe each is written whole or
        not at all, so a write that never returns leaves an exact count of
        what the reader got.
        """
        view = memoryview(batch.data)
        while batch.written < len(view) and not self.abandoned:
            try:
                batch.written += os.write(self._fd, view[batch.written : batch.written + select.PIPE_BUF])
            except BlockingIOError:  # whoever started us left stdout non-blocking
                select.select([], [self._fd], [])
            except OSError as exc:
                return exc
        return None

    def _notify_trio(self) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # trio has ended: nobody waits
            self._token.run_sync_soon(self._signal_change)


@dataclass(slots=True)
class _Batch:
    """What the thread is writing: whole lines, after a newline if the last write left half a line."""

    data: bytes
    prefix: int  # 1 if data starts with that newline
    lines: int
    written: int = 0  # bytes of data written so far

    def lines_written(self) -> int:
        """Lines written whole (a line ends with its newline)."""
        return max(0, self.data.count(b"\n", 0, self.written) - self.prefix)
