"""The demo's cast: simulated clients on real TCP connections, in a process of their own.

``python -m tui_echo.demo.cast PORT [--speed X]`` (``tui-echo demo`` starts it). It runs outside
the server's event loop, so that the monitor shows what the server itself costs. It ends when its
standard input reaches end of file: the demo holds the other end of that pipe, and the kernel
closes it however the demo ends (q, a signal, a crash, even SIGKILL), so the cast never outlives it.

The cast, one trio task each (see ``tui_echo.demo.script`` for what they say and when):
alice, bob and carol chat; a sensor sends binary frames; a logger sends heartbeats and now and
then floods; dave says hello and goes quiet until the idle timeout cuts him off; erin comes and
goes; frank uploads and never reads his echo, until the write timeout cuts him off. Whoever is cut
off (kicked, timed out) comes back after a pause. Everybody reads and drops what the server sends
(echo, and the operator's sends), except frank.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import trio

from tui_echo.arguments import OneLineParser, whole_number
from tui_echo.demo import script

HOST = "127.0.0.1"

Act = Callable[[trio.SocketStream], Awaitable[None]]


class Pace:
    """Time at the demo's speed."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._rng = random.Random()

    def of(self, seconds: float) -> float:
        return seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(self.of(seconds))

    async def sleep_between(self, span: tuple[float, float]) -> None:
        await self.sleep(self._rng.uniform(*span))


async def _connect(port: int, receive_buffer: int | None) -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if receive_buffer is not None:  # before connect: it sets the window the server sees
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await sock.connect((HOST, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def _drain(stream: trio.SocketStream) -> None:
    while await stream.receive_some(65536):
        pass


async def online(port: int, act: Act, *, reads: bool = True, receive_buffer: int | None = None) -> None:
    """One connection: ``act`` talks on it while (if ``reads``) whatever the server sends is read and dropped.

    It ends when either ends: the server closed the connection (a kick, a timeout), it broke, or
    ``act`` is done. A refused connection (a ban, a full server) ends it at once.
    """
    try:
        stream = await _connect(port, receive_buffer)
    except OSError:
        return
    async with stream, trio.open_nursery() as nursery:

        async def until_done(part: Act) -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await part(stream)
            nursery.cancel_scope.cancel()

        nursery.start_soon(until_done, act)
        if reads:
            nursery.start_soon(until_done, _drain)


async def again_and_again(
    port: int,
    pace: Pace,
    act: Act,
    *,
    pause: tuple[float, float] = script.COME_BACK,
    reads: bool = True,
    receive_buffer: int | None = None,
) -> None:
    """``act`` online, and again on a new connection a pause after each one ends."""
    while True:
        await online(port, act, reads=reads, receive_buffer=receive_buffer)
        await pace.sleep_between(pause)


def every(pace: Pace, period: float, messages: Iterator[bytes]) -> Act:
    """Send the next of ``messages`` every ``period``, across connections."""

    async def send(stream: trio.SocketStream) -> None:
        for message in messages:
            await stream.send_all(message)
            await pace.sleep(period)

    return send


@dataclass
class Chatter:
    name: str
    stream: trio.SocketStream | None = None  # while connected; only the conversation writes to it
    came_back: bool = False  # connected again after being cut off: says so at its next turn


async def chatter(port: int, pace: Pace, member: Chatter) -> None:
    for visit in itertools.count():

        async def present(stream: trio.SocketStream, came_back: bool = visit > 0) -> None:
            member.stream, member.came_back = stream, came_back
            try:
                await trio.sleep_forever()
            finally:
                member.stream = None

        await online(port, present)
        await pace.sleep_between(script.COME_BACK)


async def conversation(pace: Pace, members: dict[str, Chatter]) -> None:
    """The script, line by line, round and round; a line whose speaker is away is skipped."""
    for speaker, text in itertools.cycle(script.CONVERSATION):
        await pace.sleep_between(script.CHAT_PAUSE)
        member = members[speaker]
        if member.stream is None:
            continue
        line = script.comeback_line(speaker) if member.came_back else script.chat_line(speaker, text)
        member.came_back = False
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await member.stream.send_all(line)


async def quiet(port: int, pace: Pace) -> None:
    """dave: says two things, then nothing, until the idle timeout cuts him off; then again."""
    for hello, leaving in itertools.cycle(script.QUIET_VISITS):

        async def visit(stream: trio.SocketStream, hello: str = hello, leaving: str = leaving) -> None:
            await stream.send_all(script.chat_line("dave", hello))
            await pace.sleep(script.QUIET_BEFORE_LEAVING)
            await stream.send_all(script.chat_line("dave", leaving))
            await trio.sleep_forever()

        await online(port, visit)
        await pace.sleep_between(script.COME_BACK)


async def visitor(port: int, pace: Pace) -> None:
    """erin: joins, says hello, stays a while, says goodbye and leaves; comes back later."""

    async def visit(stream: trio.SocketStream) -> None:
        await stream.send_all(script.chat_line("erin", "hi everyone, just passing through"))
        await pace.sleep_between(script.VISIT)
        await stream.send_all(script.chat_line("erin", "gotta run, bye!"))
        await stream.send_eof()  # the server echoes the goodbye, then closes: a clean "closed by peer"
        await trio.sleep_forever()

    await again_and_again(port, pace, visit, pause=script.AWAY)


async def sensor(port: int, pace: Pace) -> None:
    """A device sending a small binary frame every second."""
    frames = map(script.sensor_frame, itertools.count())
    await again_and_again(port, pace, every(pace, script.SENSOR_PERIOD, frames))


async def logger(port: int, pace: Pace) -> None:
    """Heartbeats, and now and then a flood (a replayed backlog) for a few seconds."""
    heartbeats, entries = itertools.count(), itertools.count()

    async def flood(stream: trio.SocketStream) -> None:
        # A few lines, then a millisecond's pause (trio's shortest): bigger batches would reach the
        # server as one chunk, that is one message, and the flood would look like a trickle.
        batch = script.FLOOD_RATE // 1000
        end = trio.current_time() + pace.of(script.FLOOD_SECONDS)
        while trio.current_time() < end:
            for _ in range(batch):
                await stream.send_all(script.backlog_line(next(entries)))
            await trio.sleep(0.001)

    async def log(stream: trio.SocketStream) -> None:
        flood_at = trio.current_time() + pace.of(script.FIRST_FLOOD)
        while True:
            if trio.current_time() >= flood_at:
                await flood(stream)
                flood_at = trio.current_time() + pace.of(script.FLOOD_EVERY)
            await stream.send_all(script.heartbeat_line(next(heartbeats)))
            await pace.sleep(script.HEARTBEAT_PERIOD)

    await again_and_again(port, pace, log)


async def never_reads(port: int, pace: Pace) -> None:
    """frank: uploads and never reads the echo. Once the socket buffers are full the server waits to
    write to him, and the write timeout cuts him off."""
    upload = every(pace, script.UPLOAD_PERIOD, map(script.upload_part, itertools.count()))
    await again_and_again(port, pace, upload, reads=False, receive_buffer=script.UPLOAD_RECEIVE_BUFFER)


async def chat(port: int, pace: Pace) -> None:
    """alice, bob and carol: a connection each, and the conversation that speaks through them."""
    members = {name: Chatter(name) for name in script.CHATTERS}
    async with trio.open_nursery() as nursery:
        for member in members.values():
            nursery.start_soon(chatter, port, pace, member)
        nursery.start_soon(conversation, pace, members)


async def perform(port: int, pace: Pace) -> None:
    """The whole cast, for ever."""
    async with trio.open_nursery() as nursery:
        for part in (chat, sensor, logger, quiet, visitor, never_reads):
            nursery.start_soon(part, port, pace)


async def _until_stdin_closes() -> None:
    # A thread, not a non-blocking stdin: that would change the terminal's file for others, if run by hand.
    await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)


async def _run(port: int, speed: float) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(perform, port, Pace(speed))
        await _until_stdin_closes()
        nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m tui_echo.demo.cast", description="The demo's cast; ends at EOF on stdin.")
    parser.add_argument("port", type=whole_number(1, 65535), help="The echo server's port on 127.0.0.1.")
    parser.add_argument("--speed", type=float, default=1.0, help="Times faster than life (default 1).")
    args = parser.parse_args(argv)
    trio.run(_run, args.port, args.speed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
