"""Run the server headless and write its events as a log to a file descriptor (stdout)."""

from __future__ import annotations

import os
import socket
import signal
import time
from dataclasses import dataclass
from typing import Protocol

import trio

from tui_echo.control.listener import ControlSettings
from tui_echo.headless.fleet import WireLog
from tui_echo.headless.log import EventLog, HumanFormat, JsonFormat
from tui_echo.headless.writer import LogWriter, say
from tui_echo.server.commands import Reload
from tui_echo.server.config import ServerConfig
from tui_echo.server.events import DataReceived, DataSent, ServerEvent
from tui_echo.server.server import EchoServer
from tui_echo.recording.writer import RecordSettings
from tui_echo.service import Service

_TICK_SECONDS = 1.0
# After a stop signal the log gets this long to write what is queued (and at least
# writer.CLOSE_GRACE_SECONDS after the server has stopped), then what is left is counted as lost. The
# server's own stop (clients closed, their FIN awaited) takes up to about 1 s, and the whole process
# must be gone within 2 s whatever the log's reader does.
LOG_STOP_SECONDS = 1.0


class LogLines(Protocol):
    """What turns events into log lines: ``EventLog``, or a worker's ``WireLog``."""

    def handle(self, event: ServerEvent) -> list[str]: ...
    def tick(self, now: float) -> list[str]: ...


class LogClosed(Exception):
    """The log's reader went away (``tui-echo --headless | head``, or its terminal closed)."""


@dataclass(frozen=True, slots=True)
class LogOutcome:
    lines_lost: int  # log lines never written (not counted once the reader has gone)
    reader_gone: bool
    abandoned: bool  # the writer thread was left behind, perhaps blocked in a write


async def write_log(events: trio.MemoryReceiveChannel[ServerEvent], log: LogLines, writer: LogWriter) -> None:
    """Consume events until the server closes the channel, queueing log lines for the writer as they come.

    Data lines are offered (dropped and counted when the writer is behind);
    lifecycle lines wait for room, which holds up this task only: meanwhile
    the server skips data events and counts them.
    """
    next_tick = trio.current_time() + _TICK_SECONDS
    warned = False
    async with events:
        closed = False
        while not closed:
            batch: list[ServerEvent] = []
            with trio.move_on_at(next_tick):
                try:
                    batch.append(await events.receive())
                    while True:  # everything already waiting, in one batch
                        batch.append(events.receive_nowait())
                except trio.WouldBlock:
                    pass
                except trio.EndOfChannel:
                    closed = True
            # Outside the timeout: a lifecycle line waiting for room must not be cut off by the tick.
            for event in batch:
                lines = log.handle(event)
                if isinstance(event, DataReceived | DataSent):
                    writer.offer(lines)
                else:
                    await writer.put(lines)
            if closed or trio.current_time() >= next_tick:
                writer.offer(log.tick(time.time()))
                next_tick = trio.current_time() + _TICK_SECONDS
            if writer.reader_gone:
                raise LogClosed
            if writer.error is not None and not warned:
                warned = True
                reason = os.strerror(writer.error.errno) if writer.error.errno else str(writer.error)
                say(f"tui-echo: warning: cannot write the log ({reason}); still serving, counting the lines lost")


async def _reload_on_signal(server: EchoServer) -> None:
    """SIGUSR1: re-read the files (a reload's notice says what changed, or why nothing did)."""
    with trio.open_signal_receiver(signal.SIGUSR1) as signals:
        async for _ in signals:
            server.command_nowait(Reload())


async def _stop_on_signal(server: EchoServer, writer: LogWriter, everything: trio.CancelScope) -> None:
    # SIGHUP: the terminal closed. Stop cleanly all the same, so that every client gets its EOF.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for _ in signals:
            if server.stopping:
                everything.cancel()  # a second signal: do not wait for a clean stop, nor for the log
                return
            server.stop()
            writer.give_up_after(LOG_STOP_SECONDS)


async def _stop_when_parent_goes(server: EchoServer) -> None:
    """A worker's stdin is a pipe from its parent: its end (the parent died, even by SIGKILL) stops the worker."""
    while True:
        await trio.lowlevel.wait_readable(0)
        try:
            if not os.read(0, 4096):
                break
        except BlockingIOError:
            continue
        except OSError:
            break
    server.stop()


async def run_headless(
    config: ServerConfig,
    fd: int,
    json_lines: bool = False,
    encoding: str = "utf-8",
    control: ControlSettings | None = None,
    listeners: list[socket.socket] | None = None,
    record: RecordSettings | None = None,
) -> LogOutcome:
    """Serve until SIGINT, SIGTERM or SIGHUP, logging to ``fd``. Raises ListenError before anything runs
    if it cannot listen (or, with ``control``, open its control socket).

    A worker of a ``--workers`` server (``config.worker``) writes its events as wire records for its
    parent to merge, and also stops when its parent goes (its stdin ends).
    """
    service = Service(config, event_buffer=config.event_buffer, control=control, listeners=listeners, record=record)
    service.listen()
    writer = LogWriter(fd, encoding)
    log: LogLines
    if config.worker is not None:
        log = WireLog()
    else:
        log = EventLog(JsonFormat() if json_lines else HumanFormat(), lines_lost=lambda: writer.lines_lost)
    if service.metrics is not None:
        service.metrics.lines_lost = lambda: writer.lines_lost
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, service.server, writer, nursery.cancel_scope)
        nursery.start_soon(_reload_on_signal, service.server)
        if config.worker is not None:
            os.set_blocking(0, False)
            nursery.start_soon(_stop_when_parent_goes, service.server)
        try:
            try:
                async with trio.open_nursery() as serving:
                    serving.start_soon(service.serve)
                    await write_log(service.events, log, writer)
            except* LogClosed:
                pass  # nobody reads the log any more: stop serving, quietly
        finally:
            # Also after a second signal: then this is cancelled at once, and abandons the writer.
            await writer.aclose(LOG_STOP_SECONDS)
            nursery.cancel_scope.cancel()
    return LogOutcome(lines_lost=writer.lines_lost, reader_gone=writer.reader_gone, abandoned=writer.abandoned)
