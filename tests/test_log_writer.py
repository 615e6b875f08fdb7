"""The log writer on its own, with real pipes and /dev/full: what waits, what is dropped and counted, and
that closing never waits past its bound, whatever the reader does."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import termios
import threading
from collections.abc import Callable, Iterator

import pytest
import trio
import trio.testing

from tui_echo.headless import writer as writer_module
from tui_echo.headless.writer import DATA_QUEUE_BYTES, QUEUE_BYTES, LogWriter

from .helpers import LOG_WRITER_THREAD, TIMEOUT, new_thread, wait_until_stuck_in_a_pipe_write

pytestmark = pytest.mark.trio

SMALL_PIPE = 4096  # the smallest pipe Linux makes: it fills after a few lines


class Pipe:
    """A small pipe; each end closed once, at the latest when the test ends."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe()
        fcntl.fcntl(self.write, fcntl.F_SETPIPE_SZ, SMALL_PIPE)
        self._open = {self.read, self.write}

    def close(self, fd: int) -> None:
        if fd in self._open:
            self._open.remove(fd)
            os.close(fd)

    def waiting(self) -> int:
        """Bytes in the pipe, not yet read."""
        return int(struct.unpack("i", fcntl.ioctl(self.read, termios.FIONREAD, b"\0\0\0\0"))[0])

    def in_it(self) -> bytes:
        """What the pipe holds now, read in one go: a write still blocked in the writer's thread is not read."""
        waiting = self.waiting()
        data = b""
        while len(data) < waiting:
            data += os.read(self.read, waiting - len(data))
        return data


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    made = Pipe()
    yield made
    made.close(made.read)  # the read end first: a writer thread still blocked in a write gets EPIPE
    made.close(made.write)


async def until(condition: Callable[[], object]) -> None:
    """Wait for a condition set by the writer's thread."""
    with trio.fail_after(TIMEOUT):
        while not condition():
            await trio.sleep(0.005)


def read_all_in_a_thread(fd: int) -> Callable[[], bytes]:
    """Read ``fd`` to EOF in a thread; the returned function waits for it and gives what was read."""
    chunks: list[bytes] = []

    def read() -> None:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def result() -> bytes:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        return b"".join(chunks)

    return result


async def test_lines_reach_the_descriptor_in_order(pipe: Pipe) -> None:
    received = read_all_in_a_thread(pipe.read)
    writer = LogWriter(pipe.write)
    await writer.put(["listening", "connected"])
    writer.offer(["data \u00e9"])
    await writer.put(["stopped"])
    await writer.aclose(TIMEOUT)
    pipe.close(pipe.write)
    assert received() == "listening\nconnected\ndata \u00e9\nstopped\n".encode()
    assert (writer.lines_lost, writer.abandoned, writer.reader_gone, writer.error) == (0, False, False, None)


async def test_data_lines_are_dropped_past_half_full_and_lifecycle_lines_wait_for_room(
    pipe: Pipe,
) -> None:
    writer = LogWriter(pipe.write)
    line = "x" * 999  # 1000 bytes with its newline
    half = DATA_QUEUE_BYTES // 1000 + 10  # lines: a few of them may be in the pipe already
    for n in range(half):
        await writer.put([f"{n:06d}{line[6:]}"])
    writer.offer(["a data line past half full"])
    assert writer.lines_lost == 1
    # Lifecycle lines fill the rest, then wait for room: nobody reads yet.
    waited: list[int] = []

    async def fill() -> None:
        for n in range(half, QUEUE_BYTES // 1000 + 10):
            await writer.put([f"{n:06d}{line[6:]}"])
        waited.append(n)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fill)
        await trio.testing.wait_all_tasks_blocked()
        assert waited == []
        received = read_all_in_a_thread(pipe.read)  # the reader comes back: the wait ends
    await writer.aclose(TIMEOUT)
    pipe.close(pipe.write)
    lines = received().decode().splitlines()
    assert [int(text[:6]) for text in lines] == list(range(QUEUE_BYTES // 1000 + 10))
    assert writer.lines_lost == 1


async def test_closing_gives_up_on_a_reader_that_never_reads_and_counts_exactly(
    pipe: Pipe, mock_clock: trio.testing.MockClock
) -> None:
    before = set(threading.enumerate())
    writer = LogWriter(pipe.write)
    for n in range(200):
        await writer.put([f"line {n:03d} " + "." * 80])
    wait_until_stuck_in_a_pipe_write(new_thread(before, LOG_WRITER_THREAD))
    mock_clock.autojump_threshold = 0  # trio's clock jumps whenever every task waits: exact, on any machine
    started = trio.current_time()
    await writer.aclose(0.3)
    assert trio.current_time() - started == pytest.approx(0.3)
    assert writer.abandoned
    in_pipe = pipe.in_it().count(b"\n")
    assert 0 < in_pipe < 200
    assert in_pipe + writer.lines_lost == 200  # every line is either in the pipe or counted


async def test_once_told_to_give_up_a_waiting_lifecycle_line_is_counted_not_waited_for(
    pipe: Pipe, mock_clock: trio.testing.MockClock
) -> None:
    before = set(threading.enumerate())
    writer = LogWriter(pipe.write)
    thread = new_thread(before, LOG_WRITER_THREAD)
    for _ in range(QUEUE_BYTES // 1000 - 1):  # at most 4 of them fit in the pipe
        await writer.put(["l" * 999])
    done: list[float] = []

    async def put_one_more() -> None:
        await writer.put(["s" * 9999])
        done.append(trio.current_time())

    wait_until_stuck_in_a_pipe_write(thread)  # no room will come
    mock_clock.autojump_threshold = 0  # trio's clock jumps whenever every task waits: exact, on any machine
    async with trio.open_nursery() as nursery:
        nursery.start_soon(put_one_more)
        await trio.testing.wait_all_tasks_blocked()
        assert done == [] and writer.lines_lost == 0  # it waits for room
        told = trio.current_time()
        writer.give_up_after(0.2)  # the server is told to stop
    assert done[0] - told == pytest.approx(0.2)
    assert writer.lines_lost == 1
    await writer.put(["s" * 9999])  # past the deadline: no wait at all (a wait would move the clock)
    assert (writer.lines_lost, trio.current_time()) == (2, done[0])
    await writer.aclose(0)
    assert writer.abandoned


async def test_a_writer_that_keeps_up_still_writes_the_last_lines_after_the_give_up_time(pipe: Pipe) -> None:
    # A stopping server may send its last lines (the stopped line) after the log's give-up time.
    received = read_all_in_a_thread(pipe.read)
    writer = LogWriter(pipe.write)
    writer.give_up_after(0)
    await writer.put(["disconnected", "stopped"])
    await writer.aclose(0)
    pipe.close(pipe.write)
    assert received() == b"disconnected\nstopped\n"
    assert (writer.lines_lost, writer.abandoned) == (0, False)


async def test_a_full_disk_loses_lines_counts_them_and_carries_on() -> None:
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        writer = LogWriter(full)
        await writer.put(["listening"])
        await until(lambda: writer.error is not None)
        writer.offer(["a", "b"])
        await writer.put(["stopped"])
        await writer.aclose(TIMEOUT)
    finally:
        os.close(full)
    assert writer.error is not None and writer.error.errno == errno.ENOSPC
    assert (writer.lines_lost, writer.abandoned, writer.reader_gone) == (4, False, False)


async def test_a_reader_that_goes_away_ends_the_log_quietly(pipe: Pipe) -> None:
    writer = LogWriter(pipe.write)
    pipe.close(pipe.read)
    await writer.put(["connected"])
    await until(lambda: writer.reader_gone)
    await writer.put(["disconnected"])
    await writer.aclose(TIMEOUT)
    assert (writer.lines_lost, writer.error, writer.abandoned) == (0, None, False)


async def test_a_write_that_fails_midway_leaves_no_torn_line(pipe: Pipe, monkeypatch: pytest.MonkeyPatch) -> None:
    # The disk fills in the middle of a line, then has room again.
    real_write = os.write
    script = iter(["part", "fail"])

    def write_with_a_full_disk(fd: int, data: bytes) -> int:
        if fd == pipe.write:
            step = next(script, "write")
            if step == "part":
                return real_write(fd, bytes(data[:5]))
            if step == "fail":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(writer_module.os, "write", write_with_a_full_disk)
    writer = LogWriter(pipe.write)
    await writer.put(["first line", "second line"])
    await until(lambda: writer.error is not None)
    await writer.put(["third line"])
    await writer.aclose(TIMEOUT)
    assert pipe.in_it() == b"first\nthird line\n"
    assert writer.lines_lost == 2


async def test_a_non_blocking_stdout_waits_instead_of_losing_lines(pipe: Pipe) -> None:
    os.set_blocking(pipe.write, False)  # as some parents leave a shared pipe
    writer = LogWriter(pipe.write)
    lines = [f"line {n:04d} " + "." * 90 for n in range(300)]  # 30 KB: the pipe fills many times over
    await writer.put(lines)
    received = read_all_in_a_thread(pipe.read)
    await writer.aclose(TIMEOUT)
    pipe.close(pipe.write)
    assert received().decode().splitlines() == lines
    assert writer.lines_lost == 0
