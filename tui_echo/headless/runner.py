"""Run the server headless and write its events as a log on a text stream."""

from __future__ import annotations

import errno
import signal
import time
from typing import TextIO

import trio

from tui_echo.control.listener import ControlSettings, open_control, serve_with_control
from tui_echo.headless.log import EventLog, HumanFormat, JsonFormat
from tui_echo.server.config import ServerConfig
from tui_echo.server.echo_server import EchoServer
from tui_echo.server.events import ServerEvent

_TICK_SECONDS = 1.0


class LogClosed(Exception):
    """The log's reader went away (``tui-echo --headless | head``, or its terminal closed)."""


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise LogClosed from None
    except OSError as exc:
        if exc.errno != errno.EIO:  # EIO: the terminal is gone
            raise
        raise LogClosed from None


async def write_log(events: trio.MemoryReceiveChannel[ServerEvent], log: EventLog, stream: TextIO) -> None:
    """Consume events until the server closes the channel, writing log lines as they come.

    Writes run in a worker thread: a terminal or pipe that stops reading
    blocks this task only, never the echo; meanwhile the server skips data
    events and counts them.
    """
    next_tick = trio.current_time() + _TICK_SECONDS
    async with events:
        closed = False
        while not closed:
            lines: list[str] = []
            with trio.move_on_at(next_tick):
                try:
                    lines += log.handle(await events.receive())
                    while True:  # everything already waiting, in one batch
                        lines += log.handle(events.receive_nowait())
                except trio.WouldBlock:
                    pass
                except trio.EndOfChannel:
                    closed = True
            if closed or trio.current_time() >= next_tick:
                lines += log.tick(time.time())
                next_tick = trio.current_time() + _TICK_SECONDS
            if lines:
                lines.append("")
                await trio.to_thread.run_sync(_write, stream, "\n".join(lines))


async def _stop_on_signal(server: EchoServer, everything: trio.CancelScope) -> None:
    # SIGHUP: the terminal closed. Stop cleanly all the same, so that every client gets its EOF.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for _ in signals:
            if server.stopping:
                everything.cancel()  # a second signal: do not wait for a clean stop
                return
            server.stop()


async def run_headless(
    config: ServerConfig, stream: TextIO, json_lines: bool = False, control: ControlSettings | None = None
) -> None:
    """Serve until SIGINT, SIGTERM or SIGHUP. Raises ListenError before anything runs if it cannot listen
    (or, with ``control``, open its control socket)."""
    send, receive = trio.open_memory_channel[ServerEvent](config.event_buffer)
    server = EchoServer(config, send)
    server.listen()
    control_socket = open_control(server, control) if control is not None else None
    log = EventLog(JsonFormat() if json_lines else HumanFormat())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, server, nursery.cancel_scope)
        try:
            async with trio.open_nursery() as serving:
                serving.start_soon(serve_with_control, server, control_socket)
                await write_log(receive, log, stream)
        except* LogClosed:
            pass  # nobody reads the log any more: stop serving, quietly
        nursery.cancel_scope.cancel()
