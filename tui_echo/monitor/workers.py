"""``tui-echo --workers N`` with the monitor: the headless --workers server as a child, the monitor
attached to every worker's control socket (``FleetSource``). ``q`` quits and stops the server.

The server runs in a process of its own (its log, JSON, is read and dropped here once it has said
where it listens), so the monitor's drawing never shares a core's event loop with an echo.
"""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from textual.binding import Binding

from tui_echo.arguments import PROG
from tui_echo.control.client import ConsoleError
from tui_echo.control.paths import default_socket_path, worker_socket_path
from tui_echo.monitor.attached import AttachedApp, AttachedMainScreen
from tui_echo.monitor.fleet import FleetSource

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
START_SECONDS = 10.0  # for the workers to listen and open their control sockets
STOP_SECONDS = 3.0  # the server's own stop promise is 2 s


class WorkersMainScreen(AttachedMainScreen):
    BINDINGS = [Binding("q", "app.quit", "Quit")]


class WorkersApp(AttachedApp):
    """The attached monitor whose ``q`` quits: the server it started stops with it."""

    MAIN_SCREEN = WorkersMainScreen
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    async def action_quit(self) -> None:
        if self.quitting:
            return
        self.quitting = True
        await self.remote.stop()
        self.exit()


def _sockets(child: subprocess.Popen[str], workers: int, control: str | None) -> list[Path]:
    """The workers' control sockets, once the child's log has said where it listens."""
    assert child.stdout is not None
    for line in child.stdout:
        record = json.loads(line)
        if record.get("event") == "listening":
            port = int(record["port"])
            base = default_socket_path(port) if control is None else Path(control).absolute()
            return [worker_socket_path(base, index) for index in range(1, workers + 1)]
    raise ConsoleError("the server ended before it listened")


def _drain(log: IO[str]) -> None:
    """Read the server's log and drop it (the feed shows the events); a pipe left full would stall it."""
    for _ in log:
        pass


def _open(paths: list[Path]) -> FleetSource:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return FleetSource.open(paths)
        except ConsoleError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _die_with_parent() -> None:
    """In the child, before it runs: SIGTERM when this process dies, however it dies (a killed
    terminal, SIGKILL): the server it started must not outlive the monitor that shows it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def run_workers_monitor(arguments: Sequence[str], workers: int, control: str | None, feed_lines: int) -> int:
    """Start the server (``arguments`` with --headless --json) and show it until ``q``; its exit code."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tui_echo", *arguments, "--headless", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the terminal's keys are the monitor's; the server stops when it quits
        preexec_fn=_die_with_parent,  # called from the main thread, which lives as long as the monitor
    )
    try:
        try:
            source = _open(_sockets(child, workers, control))
        except ConsoleError as exc:
            code = child.wait() if child.poll() is not None else None
            if code == 2:
                return 2  # the server said why, on stderr
            print(f"{PROG}: error: the workers did not open their control sockets: {exc}", file=sys.stderr)
            return 1
        assert child.stdout is not None
        threading.Thread(target=_drain, args=(child.stdout,), daemon=True).start()
        app = WorkersApp(source, feed_lines=feed_lines)
        app.run()
        return app.return_code or 0
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
