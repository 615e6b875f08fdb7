"""The installed ``tui-echo`` in a real terminal (tmux), with a real client, driven by keys."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import TIMEOUT
from .process import needs_tool, parent_of, process_gone, tui_echo_command

pytestmark = pytest.mark.terminal


FORWARD_HANGUP_AND_RECORD = """
import signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGHUP, lambda *_: child.send_signal(signal.SIGHUP))
code = child.wait()
open(sys.argv[1], "w").write(str(code))
"""


class Tmux:
    def __init__(self, tmux: str) -> None:
        self.tmux = tmux
        self.socket = f"tui-echo-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        done = subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True, text=True, timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p")

    def wait_for(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            match = re.search(pattern, self.screen())
            if match:
                return match
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} never appeared; the screen:\n{self.screen()}")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux(needs_tool("tmux"))
    # A plain shell, so that the exit code and the restored terminal can be read after tui-echo ends.
    session.run("new-session", "-d", "-x", "120", "-y", "40", "env PS1='$ ' bash --norc --noprofile")
    yield session
    subprocess.run([session.tmux, "-L", session.socket, "kill-server"], capture_output=True)


def test_the_installed_command_shows_a_client_kicks_it_and_quits_cleanly(tmux: Tmux) -> None:
    tmux.run("send-keys", f"{shlex.quote(tui_echo_command())} --port 0; echo exit=$?", "Enter")
    port = int(tmux.wait_for(r"listening 127\.0\.0\.1:(\d+)").group(1))
    assert tmux.run("display", "-p", "#{alternate_on}").strip() == "1"

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        client.sendall(b"hello from e2e\n")
        assert client.recv(100) == b"hello from e2e\n"
        row = tmux.wait_for(r"#1 +127\.0\.0\.1:\d+ .* 1 +15 B +15 B .*connected")
        assert "kick" in row.string.splitlines()[row.string.count("\n", 0, row.start())]
        tmux.wait_for(r"#1 +⇄ hello from e2e\\n")

        tmux.run("send-keys", "K")
        assert client.recv(100) == b""  # EOF: the server closed the connection
        tmux.wait_for(r"disconnected: kicked")

    tmux.run("send-keys", "q")
    tmux.wait_for(r"(?m)^exit=0$")
    assert tmux.run("display", "-p", "#{alternate_on}").strip() == "0"  # back on the normal screen
    assert "\x1b" not in tmux.screen()
    tmux.run("send-keys", "stty -a | grep -o -- '-\\?icanon\\|-\\?echo ' | tr '\\n' ' '; echo", "Enter")
    tmux.wait_for(r"icanon echo")  # line editing and echo are on again: the terminal is restored


@pytest.mark.parametrize("mode", ["monitor", "headless"])
def test_closing_the_terminal_closes_every_client_and_exits_0(tmux: Tmux, mode: str, tmp_path: Path) -> None:
    status = tmp_path / "status"
    headless = ["--headless"] if mode == "headless" else []
    # An interactive shell passes SIGHUP on to its jobs and is gone; this stand-in does the same
    # and then writes down tui-echo's exit code.
    shell = [sys.executable, "-c", FORWARD_HANGUP_AND_RECORD, str(status), tui_echo_command(), "--port", "0", *headless]
    tmux.run("respawn-pane", "-k", shlex.join(shell))
    port = int(tmux.wait_for(r"listening (?:on )?127\.0\.0\.1:(\d+)").group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        client.sendall(b"ping")
        assert client.recv(100) == b"ping"
        tmux.wait_for(r"#1 .*connected")
        subprocess.run([tmux.tmux, "-L", tmux.socket, "kill-server"], capture_output=True)  # SIGHUP, pty gone
        assert client.recv(100) == b""  # the server said goodbye before it went
    deadline = time.monotonic() + TIMEOUT
    while not status.exists() or not status.read_text().strip():
        assert time.monotonic() < deadline, "tui-echo outlived its terminal"
        time.sleep(0.05)
    assert status.read_text().strip() == "0"


def test_the_installed_demo_starts_serves_a_visitor_and_quits_with_exit_0(tmux: Tmux) -> None:
    tmux.run("send-keys", f"{shlex.quote(tui_echo_command())} demo --speed 4; echo exit=$?", "Enter")
    port = int(tmux.wait_for(r"join in: nc 127\.0\.0\.1 (\d+)").group(1))
    tmux.wait_for(r"clients [4-9] now")  # the cast
    (cast_pid,) = cast_processes(port)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as visitor:
        visitor.sendall(b"hello from a student\n")
        assert visitor.recv(100) == b"hello from a student\n"
        tmux.wait_for(r"⇄ hello from a student")
        tmux.run("send-keys", "q")
        tmux.wait_for(r"(?m)^exit=0$")
    assert process_gone(cast_pid)


def test_the_cast_ends_when_the_demo_is_killed(tmux: Tmux) -> None:
    """SIGKILL leaves the demo no chance to stop its cast: the cast notices on its own (end of file on stdin)."""
    tmux.run("respawn-pane", "-k", "exec " + shlex.join([tui_echo_command(), "demo", "--speed", "4"]))
    port = int(tmux.wait_for(r"join in: nc 127\.0\.0\.1 (\d+)").group(1))
    (cast_pid,) = cast_processes(port)
    demo_pid = int(tmux.run("display", "-p", "#{pane_pid}"))
    assert parent_of(cast_pid) == demo_pid
    os.kill(demo_pid, signal.SIGKILL)
    deadline = time.monotonic() + TIMEOUT
    while not process_gone(cast_pid):
        assert time.monotonic() < deadline, "the cast outlived the demo"
        time.sleep(0.05)


def cast_processes(port: int) -> list[int]:
    """The pids of the cast processes playing to ``port``."""
    wanted = ["-m", "tui_echo.demo.cast", str(port)]
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError):
            continue
        if argv[1:4] == wanted:
            pids.append(int(entry.name))
    return pids


def test_the_workers_monitor_shows_its_server_and_the_server_ends_when_the_monitor_is_killed(tmux: Tmux) -> None:
    """tui-echo --workers 2 with the monitor runs its server as a child: SIGKILL to the monitor must
    not leave the server (a headless parent and its two workers) running."""
    tmux.run("respawn-pane", "-k", "exec " + shlex.join([tui_echo_command(), "--port", "0", "--workers", "2"]))
    port = int(tmux.wait_for(r"listening 127\.0\.0\.1:(\d+)").group(1))
    tmux.wait_for(r"attached to 2 workers")
    monitor_pid = int(tmux.run("display", "-p", "#{pane_pid}"))
    server = [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent_of(int(p.name)) == monitor_pid
    ]
    assert len(server) == 1
    workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent_of(int(p.name)) == server[0]]
    assert len(workers) == 2
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        client.sendall(b"hi\n")
        assert client.recv(16) == b"hi\n"
        os.kill(monitor_pid, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        while not all(process_gone(pid) for pid in (*server, *workers)):
            assert time.monotonic() < deadline, "the server outlived its monitor"
            time.sleep(0.05)
        assert client.recv(16) == b""  # its EOF: the server stopped cleanly
