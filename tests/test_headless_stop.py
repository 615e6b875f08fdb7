"""The headless stop's schedule on trio's clock: gone within 2 s of the signal while nobody reads the log.

The same stops run as real processes in test_cli.py, which checks that they exit 0 at all: how long they take
there depends on the machine. Here trio's clock jumps whenever every task waits, so the stop's own timeouts
(the clients' linger, the log's give-up time) add up exactly, on any machine.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading

import pytest
import trio
import trio.testing

from tui_echo.headless.runner import LogOutcome, run_headless
from tui_echo.server.config import ServerConfig

from .helpers import LOG_WRITER_THREAD, new_thread, wait_until_stuck_in_a_pipe_write

pytestmark = pytest.mark.trio

PROMISE_SECONDS = 2.0  # the README: a stop exits 0 within 2 s, whatever the log's reader or the clients do
PIPE_BYTES = 4096  # the smallest pipe Linux makes: it fills after about 30 lines


def first_line(fd: int) -> bytes:
    line = b""
    while not line.endswith(b"\n"):  # one byte at a time: the rest stays unread in the pipe
        line += os.read(fd, 1)
    return line


async def test_a_stop_takes_at_most_2_s_of_trios_clock_while_nobody_reads_the_log(
    autojump_clock: trio.abc.Clock,
) -> None:
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    clients: list[trio.socket.SocketType] = []
    outcome: list[LogOutcome] = []
    try:
        async with trio.open_nursery() as nursery:

            async def serve() -> None:
                outcome.append(await run_headless(ServerConfig(host="127.0.0.1", port=0), write, json_lines=True))

            before = set(threading.enumerate())
            nursery.start_soon(serve)
            listening = await trio.to_thread.run_sync(first_line, read)
            writer = new_thread(before, LOG_WRITER_THREAD)
            port = int(listening.split(b'"port":')[1].split(b",")[0])
            for _ in range(50):  # clients that neither read their echo nor close: the stop waits for each
                client = trio.socket.socket()
                await client.connect(("127.0.0.1", port))
                await client.send(b"ping" * 1000)
                clients.append(client)
            # The log's reader has stopped reading. Virtual time may pass meanwhile: nothing waits on it yet.
            await trio.to_thread.run_sync(wait_until_stuck_in_a_pipe_write, writer)
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            signalled = trio.current_time()
            os.kill(os.getpid(), signal.SIGTERM)  # run_headless's signal receiver takes it
        assert trio.current_time() - signalled <= PROMISE_SECONDS
        assert outcome[0].abandoned and outcome[0].lines_lost > 0
    finally:
        for client in clients:
            client.close()
        os.close(write)
        os.close(read)
