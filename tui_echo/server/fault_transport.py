"""A fault wraps a connection's transport: what the client is sent, and what is read from it, misbehaves.

``FaultTransport`` is a ``Transport`` around another one (plain, TLS, or a
recording tap around either): so on TLS the faults act on the application
bytes before encryption, and a tap inside it records what was really sent
(a corrupted echo as sent; the flipped offsets go in a ``DataCorrupted``
event). What it does per write: drop, corrupt, cut at a byte budget
(``reset-after``, ``close-after``, ``limit-data``), slice and pace. Per read:
``stall`` (nothing read, so the client's window fills) and ``timeout``
(read and dropped). Latency needs the server to keep reading while echoes
wait: that is the fault-aware echo loop's (``fault_echo.py``).

One is made each time a client's faults are set (``install``); the hot echo
loop checks ``Connection.faults`` once per chunk and hands the client over.
"""

from __future__ import annotations

import contextlib
import math
import random
import socket
import struct
from collections.abc import Callable

import trio

from tui_echo.server.clients import ClientState
from tui_echo.server.connection import Connection
from tui_echo.server.faults import Faults
from tui_echo.server.transport import FaultEnded, Transport, WriteTimeout

MAX_OFFSETS_PER_EVENT = 256  # a DataCorrupted event lists at most these; the count is exact regardless


class FaultTransport:
    """``inner`` with ``faults`` applied, from ``set_at`` (trio time) on. Drawn from ``rng`` (seeded or not)."""

    def __init__(
        self,
        inner: Transport,
        faults: Faults,
        state: ClientState,
        rng: random.Random,
        set_at: float,
        report: Callable[[tuple[int, ...], int], None],
    ) -> None:
        self.inner = inner
        self.faults = faults
        self.set_at = set_at
        self.sent = 0  # bytes sent to the client since the faults were set
        self.resetting = False
        self.changed = trio.Event()  # set when these faults are replaced or cleared: waits end
        self._state = state
        self.rng = rng
        self._report = report
        self._paced_from = set_at  # bandwidth: when the pacing clock started, and what it has let through
        self._paced_bytes = 0
        self._last_piece_at = -math.inf  # slicer: when the last piece went out
        # Latency outside the fault-aware echo loop (echo with rules, chat, broker): a write waits until the
        # latest read plus the delay, so an answer comes late; that loop times its echoes itself and says so.
        self.delays_writes = True
        self._received_at = -math.inf

    # ---- the Transport interface ---------------------------------------------------

    async def receive(self, size: int) -> bytes | bytearray:
        """Nothing is read while a stall holds; under ``timeout`` what is read is dropped (``b""`` still ends)."""
        await self.wait_out_stall()
        while True:
            data = await self.inner.receive(size)
            self._received_at = trio.current_time()
            if not data or not self.faults.timeout or self.changed.is_set():
                return data
            self._state.bytes_in += len(data)  # read, counted, and never echoed
            self._state.fault_dropped += 1

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        faults, state = self.faults, self._state
        self.check_budget()
        if faults.latency and self.delays_writes:
            await trio.sleep_until(self._received_at + self.delay())
        await self.wait_out_stall()
        if faults.timeout or (faults.drop and self.rng.random() < faults.drop):
            state.fault_dropped += 1
            return
        budget = self._budget()
        if budget is not None and len(data) > budget:
            data = memoryview(data)[:budget]
        if faults.corrupt:
            data = self._corrupt(data)
        if faults.slicer is not None:
            await self._sliced(data, *faults.slicer)
        else:
            await self._paced(data)
        self.check_budget()

    async def close_gracefully(self, linger: float) -> None:
        """A fault's own end by reset closes at once (RST); ``slow-close`` delays the FIN."""
        if self.resetting:
            self.close()
            return
        if self.faults.slow_close:
            await trio.sleep(self.faults.slow_close / 1000)
        await self.inner.close_gracefully(linger)

    def shut_down(self) -> bool:
        """The server stops: a faulted client is cancelled (a stall or a latency waits on its own, not on a read)."""
        return False

    def close(self) -> None:
        if self.resetting:
            reset_on_close(self.inner)
        self.inner.close()

    # ---- the faults ------------------------------------------------------------------

    def delay(self) -> float:
        """Seconds an echo waits: the latency, give or take up to the jitter (as toxiproxy's), never below 0."""
        faults = self.faults
        jitter = self.rng.uniform(-faults.jitter, faults.jitter) if faults.jitter else 0.0
        return max(0.0, faults.latency + jitter) / 1000

    def ends_at(self) -> float | None:
        """Trio time at which a timed fault ends the client (``reset-after=3s``, ``close-after=3s``)."""
        times = [ms for ms in (self.faults.reset_after_ms, self.faults.close_after_ms) if ms is not None]
        return self.set_at + min(times) / 1000 if times else None

    def end_in_time(self) -> FaultEnded:
        faults = self.faults
        reset = faults.reset_after_ms is not None and (
            faults.close_after_ms is None or faults.reset_after_ms <= faults.close_after_ms
        )
        self.resetting = reset
        return FaultEnded(reset, f"{'reset' if reset else 'closed'} by fault after {self.ends_at_text()}")

    def ends_at_text(self) -> str:
        ends = self.ends_at()
        return f"{(ends - self.set_at):g} s" if ends is not None else ""

    def check_budget(self) -> None:
        """Raise FaultEnded once the bytes sent reach ``reset-after`` or ``close-after``/``limit-data``."""
        faults = self.faults
        if faults.reset_after_bytes is not None and self.sent >= faults.reset_after_bytes:
            self.resetting = True
            raise FaultEnded(True, f"reset by fault after {self.sent} bytes sent")
        close_after = faults.close_after
        if close_after is not None and self.sent >= close_after:
            raise FaultEnded(False, f"closed by fault after {self.sent} bytes sent")

    def stall_ends_at(self) -> float:
        """Trio time at which the stall ends (inf: until cleared); -inf when there is none."""
        stall = self.faults.stall
        if stall is None:
            return -math.inf
        return math.inf if stall == 0 else self.set_at + stall / 1000

    async def wait_out_stall(self) -> None:
        ends = self.stall_ends_at()
        if ends > trio.current_time():
            with trio.move_on_at(ends):
                await self.changed.wait()

    def _budget(self) -> int | None:
        limits = [n for n in (self.faults.reset_after_bytes, self.faults.close_after) if n is not None]
        return min(limits) - self.sent if limits else None

    def _corrupt(self, data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
        """Flip each byte with the set chance (all its bits: the byte is surely wrong); report the offsets."""
        chance, rng = self.faults.corrupt, self.rng
        # Skips between hits are geometric: one draw per corrupted byte, not one per byte sent.
        log_miss = math.log1p(-chance) if chance < 1.0 else -math.inf
        offsets: list[int] = []
        position = -1
        while True:
            position += 1 if log_miss == -math.inf else 1 + int(math.log(1.0 - rng.random()) / log_miss)
            if position >= len(data):
                break
            offsets.append(position)
        if not offsets:
            return data
        corrupted = bytearray(data)
        for position in offsets:
            corrupted[position] ^= 0xFF
        state = self._state
        state.fault_corrupted += len(offsets)
        base = state.bytes_out  # under the write lock: this write starts there in the client's stream
        self._report(tuple(base + p for p in offsets[:MAX_OFFSETS_PER_EVENT]), len(offsets))
        return corrupted

    async def _sliced(self, data: bytes | bytearray | memoryview, piece: int, gap_ms: int) -> None:
        """Pieces at least ``gap_ms`` apart, also across writes (two echoes never go out as one segment)."""
        view = memoryview(data)
        for start in range(0, len(view), piece):
            await trio.sleep_until(self._last_piece_at + gap_ms / 1000)
            await self._paced(view[start : start + piece])
            self._last_piece_at = trio.current_time()

    async def _paced(self, data: bytes | bytearray | memoryview) -> None:
        """Write, never faster than ``bandwidth``: each byte goes no earlier than its share of the rate allows."""
        rate = self.faults.bandwidth
        if not rate:
            await self.inner.send_all(data)
            self.sent += len(data)
            return
        view = memoryview(data)
        chunk = max(1, rate // 20)  # about 50 ms of the rate per write: smooth, and few wake-ups
        now = trio.current_time()
        if self._paced_from + self._paced_bytes / rate < now:  # idle meanwhile: no credit saved up for a burst
            self._paced_from, self._paced_bytes = now, 0
        for start in range(0, len(view), chunk):
            piece = view[start : start + chunk]
            await trio.sleep_until(self._paced_from + (self._paced_bytes + len(piece)) / rate)
            await self.inner.send_all(piece)
            self._paced_bytes += len(piece)
            self.sent += len(piece)


def reset_on_close(transport: Transport) -> None:
    """Make the close an RST: SO_LINGER with a zero timeout on the socket under every wrapper."""
    sock = socket_of(transport)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def socket_of(transport: object) -> socket.socket | None:
    """The socket under a transport and its wrappers (each wrapper names what it wraps ``inner``)."""
    while not isinstance(getattr(transport, "sock", None), socket.socket):
        transport = getattr(transport, "inner", None)
        if transport is None:
            return None
    sock: socket.socket = transport.sock  # type: ignore[attr-defined]
    return sock


def exempt_from_timeouts(write_timeout: WriteTimeout, configured: float | None, faults: Faults | None) -> None:
    """While a slow fault holds, a write waits as long as it takes; otherwise the configured write timeout."""
    slow = faults is not None and faults.slow
    write_timeout.seconds = math.inf if slow or configured is None else configured


def held_by_fault(conn: Connection) -> bool:
    """Whether a slow fault holds the client (stall, timeout, latency, bandwidth): exempt from the idle timeout."""
    transport = conn.transport
    return isinstance(transport, FaultTransport) and transport.faults.slow
