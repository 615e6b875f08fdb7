"""Chat and broker: what one client says, passed on to the others, and never more than a receiver can hold.

Each receiver has an ``Outbound`` queue, bounded in bytes, drained by a
writer task of its own (``EchoServer._write_outbound``). A sender only ever
appends to queues: a receiver that does not read fills its own queue, then
loses whole deliveries, counted in its ``dropped_out``, while the sender and
everyone else carry on. A delivery is stored once however many queues hold it.
"""

from __future__ import annotations

import itertools
from collections import deque

import trio

from tui_echo.server.clients import ClientState
from tui_echo.net import Peer, format_address

CHAT_LINE_BYTES = 64 * 1024  # --max-frame's default: a chat line without its newline past this is delivered as it is
# Deliveries are written in batches of up to this many bytes: a writer that wrote one chat line per
# scheduler turn would fall behind a sender that relays a 64 KiB chunk of lines per turn.
WRITE_BATCH_BYTES = 64 * 1024


class Outbound:
    """One receiver's deliveries, oldest first; ``limit`` bytes at most, the one being written included."""

    __slots__ = ("_deliveries", "_ready", "limit", "queued_bytes", "state", "warned")

    def __init__(self, state: ClientState, limit: int) -> None:
        self.state = state
        self.limit = limit
        self.queued_bytes = 0
        self._deliveries: deque[bytes] = deque()
        self._ready = trio.Event()
        self.warned = False  # the server said once that this receiver is losing deliveries

    def offer(self, delivery: bytes) -> bool:
        """Queue the whole delivery, or drop it and count the drop: never part of one."""
        if self.queued_bytes + len(delivery) > self.limit:
            self.state.dropped_out += 1
            return False
        self.queued_bytes += len(delivery)
        self._deliveries.append(delivery)
        self._ready.set()
        return True

    async def batch(self) -> tuple[bytes, int]:
        """The oldest deliveries, as one write of up to WRITE_BATCH_BYTES (at least one delivery, whole),
        and how many they are; waits for one. Call ``written`` with that number once they are out."""
        deliveries = self._deliveries
        while not deliveries:
            await self._ready.wait()
            self._ready = trio.Event()
        first = deliveries[0]
        if len(deliveries) == 1 or len(first) >= WRITE_BATCH_BYTES:
            return first, 1
        size, count = len(first), 1
        for delivery in itertools.islice(deliveries, 1, None):
            if size + len(delivery) > WRITE_BATCH_BYTES:
                break
            size += len(delivery)
            count += 1
        return b"".join(itertools.islice(deliveries, count)), count

    def written(self, count: int) -> None:
        deliveries = self._deliveries
        for _ in range(count):
            self.queued_bytes -= len(deliveries.popleft())

    def abandon(self) -> None:
        """The receiver left: what it was never sent counts as dropped (the one being written included)."""
        self.state.dropped_out += len(self._deliveries)
        self._deliveries.clear()
        self.queued_bytes = 0


class ChatLines:
    """Cuts what a client sends into chat lines: each ends with its newline, or is ``limit`` (--max-frame) long."""

    __slots__ = ("_partial", "_limit")

    def __init__(self, limit: int = CHAT_LINE_BYTES) -> None:
        self._partial = bytearray()
        self._limit = limit

    def lines(self, data: bytes) -> list[bytes]:
        partial = self._partial
        partial += data
        lines: list[bytes] = []
        start = 0
        limit = self._limit
        while True:
            end = partial.find(b"\n", start, start + limit + 1)
            if end >= 0:
                lines.append(bytes(partial[start : end + 1]))
                start = end + 1
            elif len(partial) - start > limit:  # no newline in sight: the bound delivers it as it is
                lines.append(bytes(partial[start : start + limit]))
                start += limit
            else:
                break
        del partial[:start]
        return lines

    def rest(self) -> bytes:
        """The unfinished line, at the end: it is said as it is."""
        rest, self._partial = bytes(self._partial), bytearray()
        return rest


def said(client_id: int, line: bytes) -> bytes:
    """``<#3> the line``; a line that came without its newline (cut at the bound, or the last) gets one."""
    return b"<#%d> %s%s" % (client_id, line, b"" if line.endswith(b"\n") else b"\n")


def operator_says(data: bytes, *, private: bool) -> bytes:
    """What the operator's send becomes in chat mode: ``<operator> hi``, or ``<operator> (private) hi``."""
    prefix = b"<operator> (private) " if private else b"<operator> "
    return prefix + data + (b"" if data.endswith(b"\n") else b"\n")


def joined(client_id: int, peer: Peer) -> bytes:
    return f"* #{client_id} joined from {format_address(peer)}\n".encode()


def left(client_id: int, why: str) -> bytes:
    return f"* #{client_id} left ({why})\n".encode()
