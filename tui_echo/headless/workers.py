"""``--workers N``: N worker processes serve one port; this parent supervises them and writes one log.

The parent binds the port with SO_REUSEPORT without listening (so it holds the port and
takes no connection), and starts each worker as ``python -m tui_echo`` with the user's own
arguments and ``--worker K/N/FIRST``: the worker binds its own socket on the port (the
kernel spreads connections over the workers' sockets by a hash of their addresses; see
``benchmarks/bench_worker_spread.py`` for why not one shared socket), opens its own
control socket (``PORT.wK.sock``), and writes its events as wire records to a pipe
this parent reads. The parent merges them into one log (``fleet.Fleet``).

A worker that dies is restarted, once a second at most, and the log says so once,
with its clients' disconnects. A stop signal goes to every worker (each in its own
session, so that a terminal's Ctrl+C reaches the parent only); a second one kills them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from tui_echo.control.listener import ControlSettings
from tui_echo.control.paths import default_socket_path, ensure_private_dir, worker_socket_path
from tui_echo.headless.fleet import Fleet
from tui_echo.headless.log import EventLog, HumanFormat, JsonFormat
from tui_echo.headless.runner import LOG_STOP_SECONDS, LogClosed, LogOutcome, write_log
from tui_echo.headless.writer import LogWriter
from tui_echo.server.binding import ListenError, open_listeners
from tui_echo.server.config import ServerConfig
from tui_echo.server.siblings import Siblings, shared_counts
from tui_echo.server.events import DataReceived, DataSent, ServerEvent, ServerListening, ServerNotice
from tui_echo.text import plural
from tui_echo.wire.events import decode_event

MAX_RECORD_BYTES = 1 << 20  # a worker's event record is at most a few KiB; a longer line is not one
RESTART_PAUSE_SECONDS = 1.0  # a worker that died soon after it started waits this long before the next
# The stop promise is 2 s. After a stop signal each worker has its own (its log gives up after 1 s);
# one still there after STOP_KILL_SECONDS is killed, and the merged log gives up at LOG_GIVE_UP_SECONDS.
STOP_KILL_SECONDS = 1.4
LOG_GIVE_UP_SECONDS = 1.7


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Workers:
    """Start, watch, restart and stop the workers; their events go, merged, to ``send``."""

    def __init__(
        self,
        config: ServerConfig,
        count: int,
        arguments: Sequence[str],
        port: int,
        control: ControlSettings | None,
        send: trio.MemorySendChannel[ServerEvent],
    ) -> None:
        self.fleet = Fleet(count, config)
        self._announced = False
        self._config = config
        self._arguments = list(arguments)
        self._port = port
        self._send = send
        self._processes: dict[int, trio.Process] = {}
        self.stopping = False
        self.failed: str = ""  # why the server could not start (a worker ended before it listened)
        self.skipped = 0  # data events dropped here, the log being behind
        self.unlogged = 0  # records past the log's give-up at the stop, counted as lost log lines
        self._give_up_at = math.inf
        self._sockets: dict[int, Path] = {}
        # The workers' client counts (server/siblings.py), inherited by each: --max-clients is the server's.
        self.counts_fd = shared_counts(count)
        self._counts = Siblings(self.counts_fd, count, 1)
        if control is not None:
            base = default_socket_path(port) if control.path is None else Path(control.path).absolute()
            if control.path is None:
                ensure_private_dir(base.parent)
            self._sockets = {k: worker_socket_path(base, k) for k in range(1, count + 1)}

    def _command(self, index: int, first_id: int) -> list[str]:
        command = [sys.executable, "-m", "tui_echo", *self._arguments]
        slot = f"{index}/{self.fleet.count}/{first_id}/{self.counts_fd}"
        command += ["--port", str(self._port), "--worker", slot]
        if index in self._sockets:
            command += ["--control", str(self._sockets[index])]
        return command

    def close(self) -> None:
        self._counts.close()
        os.close(self.counts_fd)

    def stop(self) -> None:
        """Ask every worker to stop (SIGTERM); none is restarted any more."""
        self.stopping = True
        for process in self._processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.stopping = True
        for process in self._processes.values():
            if process.returncode is None:
                process.kill()

    async def run(self) -> None:
        """Every worker, supervised, until all have stopped; then the whole server's ``stopped``."""
        async with self._send:
            async with trio.open_nursery() as nursery:
                for index in range(1, self.fleet.count + 1):
                    nursery.start_soon(self._supervise, index)
            await self._send.send(self.fleet.stopped(time.time(), self.skipped))

    async def _supervise(self, index: int) -> None:
        first_id = index
        while not self.stopping:
            process = await trio.lowlevel.open_process(
                self._command(index, first_id),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(self.counts_fd,),
                start_new_session=True,  # a terminal's Ctrl+C goes to the parent, which stops them in turn
            )
            self._processes[index] = process
            if self.stopping:  # a stop came while it started
                process.send_signal(signal.SIGTERM)
            born = trio.current_time()
            assert process.stdout is not None
            await self._relay(index, process.stdout)
            code = await process.wait()
            if not self.fleet.listened(index) and not self.stopping:
                self.failed = f"worker {index} {describe_exit(code)} before it listened"
                self.stop()
                return
            if self.stopping and code in (0, -signal.SIGTERM):
                return
            await self._died(index, process.pid, code)
            first_id = self.fleet.next_first_id(index)
            if trio.current_time() - born < RESTART_PAUSE_SECONDS:
                await trio.sleep(RESTART_PAUSE_SECONDS)

    async def _died(self, index: int, pid: int, code: int) -> None:
        self._counts.zero(index)  # its clients went with it: the others may admit in their place
        clients = self.fleet.clients_of(index)
        late = self.stopping and code == -signal.SIGKILL
        why = f"worker {index} (pid {pid}) " + ("did not stop in time and was killed" if late else describe_exit(code))
        for event in self.fleet.died(index, time.time(), why):
            if self._past_give_up():
                self.unlogged += 1
            else:
                await self._send.send(event)
        then = "" if self.stopping else "; restarting it"
        await self._send.send(ServerNotice(message=f"{why}: {plural(clients, 'client')} cut off{then}", at=time.time()))

    def give_up_after(self, seconds: float) -> None:
        """From ``seconds`` from now, the workers' records are counted as unlogged, not decoded: the log
        has given up too, and the stop promise leaves no time to format lines nobody will see."""
        self._give_up_at = trio.current_time() + seconds

    def _past_give_up(self) -> bool:
        return trio.current_time() > self._give_up_at

    def _roll_call(self) -> str:
        """Who serves the port: each worker's pid and control socket."""
        parts = []
        for index, process in sorted(self._processes.items()):
            socket_path = self._sockets.get(index)
            parts.append(f"worker {index} pid {process.pid}" + (f" ({socket_path})" if socket_path else ""))
        return f"{self.fleet.count} workers, each with its own clients and control socket: " + ", ".join(parts)

    async def _relay(self, index: int, stdout: trio.abc.ReceiveStream) -> None:
        """Pass a worker's records on until its pipe ends (it stopped or died)."""
        pending = b""
        while True:
            chunk = await stdout.receive_some(65536)
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > MAX_RECORD_BYTES:
                pending = b""  # not a record of ours: drop it rather than hold it
            for line in lines:
                await self._forward(index, line)

    async def _forward(self, index: int, line: bytes) -> None:
        if self._past_give_up() and b'"event":"stopped"' not in line:
            self.unlogged += 1  # the log has given up: not even decoded (a stop at 10,000 clients)
            return
        try:
            event = decode_event(json.loads(line))
        except (ValueError, KeyError, TypeError):
            return  # a half line from a worker's failed write, which its own count of lost lines covers
        if event is None:
            return
        shown = self.fleet.take(index, event)
        if isinstance(event, ServerListening) and self.fleet.all_listened and not self._announced:
            self._announced = True
            await self._send.send(ServerNotice(message=self._roll_call(), at=time.time()))
        if shown is None:
            return
        if isinstance(shown, DataReceived | DataSent):
            try:
                self._send.send_nowait(shown)
            except trio.WouldBlock:
                self.skipped += 1  # the log's summaries still give exact counts, from the next event
            return
        await self._send.send(shown)


async def _stop_on_signal(workers: Workers, writer: LogWriter, everything: trio.Nursery) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for _ in signals:
            if workers.stopping:
                workers.kill()  # a second signal: do not wait for a clean stop
                everything.cancel_scope.cancel()
                return
            workers.stop()
            writer.give_up_after(LOG_GIVE_UP_SECONDS)
            workers.give_up_after(LOG_GIVE_UP_SECONDS)
            everything.start_soon(_kill_after, workers, STOP_KILL_SECONDS)


async def _kill_after(workers: Workers, seconds: float) -> None:
    await trio.sleep(seconds)
    workers.kill()  # those still stopping: the promise is the whole server's


async def run_workers(
    config: ServerConfig,
    count: int,
    arguments: Sequence[str],
    fd: int,
    json_lines: bool = False,
    encoding: str = "utf-8",
    control: ControlSettings | None = None,
) -> LogOutcome:
    """Serve with ``count`` workers until a stop signal, one log to ``fd``. ``arguments``: the
    command line each worker gets (the user's own). Raises ListenError if the port is taken or
    a worker cannot start."""
    held = open_listeners(config.host, config.port, backlog=None, reuse_port=True)
    workers: Workers | None = None
    try:
        send, events = trio.open_memory_channel[ServerEvent](config.event_buffer)
        workers = Workers(config, count, arguments, held[0].getsockname()[1], control, send)
        writer = LogWriter(fd, encoding)
        log = EventLog(
            JsonFormat() if json_lines else HumanFormat(), lines_lost=lambda: writer.lines_lost + workers.unlogged
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signal, workers, writer, nursery)
            try:
                try:
                    async with trio.open_nursery() as serving:
                        serving.start_soon(workers.run)
                        await write_log(events, log, writer)
                except* LogClosed:
                    workers.stop()
            finally:
                await writer.aclose(LOG_STOP_SECONDS)
                nursery.cancel_scope.cancel()
    finally:
        for sock in held:
            sock.close()
        if workers is not None:
            workers.close()
    if workers.failed:
        raise ListenError(f"{workers.failed} (see its error above)")
    return LogOutcome(lines_lost=writer.lines_lost, reader_gone=writer.reader_gone, abandoned=writer.abandoned)
