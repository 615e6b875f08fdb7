"""Echo under faults: the loop a client runs while its transport is a ``FaultTransport``.

The plain loops hand a client here when its faults are set (``Handoff``),
and this loop hands it back once they are cleared and what it holds is
sent. It reads and writes in two tasks, so that ``latency`` delays each echo
by itself while the server keeps reading (up to ``FAULT_QUEUE_BYTES``
waiting; past that it stops reading until the queue drains, and the
client's window fills), and a third ends the client when a timed fault says
so (``reset-after=3s``, ``close-after=3s``). What each write does (drop,
corrupt, slice, pace, stall, cut at a byte budget) is the transport's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import trio

from tui_echo.server.connection import Connection, Ended, Handoff, until_it_hands_off
from tui_echo.server.context import Context
from tui_echo.server.events import DisconnectReason
from tui_echo.server.fault_transport import FaultTransport

FAULT_QUEUE_BYTES = 1 << 20  # echoes waiting out their latency, per client; then the server stops reading


async def echo_with_faults(
    context: Context, conn: Connection, plain: Callable[[Connection], Coroutine[Any, Any, Ended | Handoff]]
) -> Ended | Handoff:
    """Echo until the peer closes or a fault ends it; ``plain`` is the loop to hand back to once cleared."""
    echoes: deque[tuple[float, bytes | bytearray]] = deque()
    waiting = 0  # bytes in ``echoes``
    queued = trio.lowlevel.ParkingLot()  # the writer waits here for an echo
    drained = trio.lowlevel.ParkingLot()  # the reader waits here for room (or for an empty queue)
    ended: list[Ended | Handoff] = []
    size = context.config.recv_size
    state = conn.state

    async def read() -> Ended | Handoff:
        nonlocal waiting
        due = -math.inf
        while True:
            transport = conn.transport
            if not isinstance(transport, FaultTransport):  # cleared: send what waits, then back to the plain loop
                while echoes:
                    await drained.park()
                return Handoff(plain(conn))
            transport.delays_writes = False  # this loop times each echo itself
            transport.check_budget()  # reset-after=0: at once
            await transport.wait_out_stall()
            if conn.transport is not transport:
                continue
            data = await transport.receive(size)
            if not data:
                while echoes:
                    await drained.park()
                if transport.faults.slow_close:
                    await trio.sleep(transport.faults.slow_close / 1000)
                return DisconnectReason.CLOSED_BY_PEER, ""
            now, messages = context.count_in(state, data)
            context.publish(state, data, messages, now)
            due = max(due, now + transport.delay())  # a stream's bytes keep their order whatever the jitter
            echoes.append((due, data))
            waiting += len(data)
            queued.unpark()
            while waiting >= FAULT_QUEUE_BYTES:
                await drained.park()

    async def write() -> Ended:
        nonlocal waiting
        while True:
            while not echoes:
                await queued.park()
            due, data = echoes[0]
            await trio.sleep_until(due)
            async with conn.write_lock:
                await conn.transport.send_all(data)
            echoes.popleft()
            waiting -= len(data)
            drained.unpark_all()

    async def end_in_time() -> Ended:
        """Raise the fault's end at its time (``reset-after=3s``); a change of faults starts the wait again."""
        while True:
            transport = conn.transport
            if not isinstance(transport, FaultTransport):
                await trio.sleep_forever()
                continue
            ends = transport.ends_at()
            with trio.move_on_at(math.inf if ends is None else ends):
                await transport.changed.wait()
                continue
            raise transport.end_in_time()

    async with trio.open_nursery() as nursery:

        async def run(loop: Callable[[], Coroutine[Any, Any, Ended | Handoff]]) -> None:
            ended.append(await until_it_hands_off(loop()))
            nursery.cancel_scope.cancel()

        nursery.start_soon(run, read)
        nursery.start_soon(run, write)
        nursery.start_soon(run, end_in_time)
    return ended[0]
