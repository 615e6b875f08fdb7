"""``tui-echo attach P1 P2``, the installed command in a real terminal (tmux), over two real headless
servers with a real ``nc`` client each: both are client #1 of their server."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import time

import pytest

from .helpers import TIMEOUT
from .process import HeadlessProcess, needs_tool, tui_echo_command
from .test_attach_servers import two  # noqa: F401  (the fixture: two headless servers)
from .test_e2e_tmux import Tmux, tmux  # noqa: F401  (the fixture)

pytestmark = pytest.mark.terminal


class Nc:
    """``nc 127.0.0.1 PORT``, typed into through a pipe."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [needs_tool("nc"), "127.0.0.1", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def say(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def echoes(self, line: bytes) -> None:
        self.say(line)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == line

    def ends_when_it_writes(self) -> None:
        """Its connection is gone: a write meets the peer's reset, and nc ends (at its first or second)."""
        deadline = time.monotonic() + TIMEOUT
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, "nc is still connected"
            with contextlib.suppress(BrokenPipeError):
                self.say(b"anyone?\n")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.2)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


def test_attach_two_servers_kick_the_second_ones_1_and_stop_it(
    tmux: Tmux,  # noqa: F811
    two: tuple[HeadlessProcess, HeadlessProcess],  # noqa: F811
) -> None:
    first, second = two
    p1, p2 = first.port, second.port
    command = shlex.quote(tui_echo_command())
    with contextlib.closing(Nc(p1)) as nc1, contextlib.closing(Nc(p2)) as nc2:
        nc1.echoes(b"on the first\n")
        nc2.echoes(b"on the second\n")

        # --all finds both.
        tmux.run("send-keys", f"{command} attach --all; echo exit=$?", "Enter")
        tmux.wait_for(rf"attached to 2 servers: ({p1}|{p2}) \(pid \d+\), ({p1}|{p2}) \(pid \d+\)")
        tmux.run("send-keys", "q")
        tmux.wait_for(r"(?m)^exit=0$")
        tmux.run("send-keys", "clear", "Enter")

        tmux.run("send-keys", f"{command} attach {p1} {p2}; echo exit=$?", "Enter")
        tmux.wait_for(rf"attached to 2 servers: {p1} \(pid {first.proc.pid}\), {p2} \(pid {second.proc.pid}\)")
        tmux.wait_for(rf"#1 +{p1} +127\.0\.0\.1:\d+ .*connected")  # both #1, each with its server
        tmux.wait_for(rf"#1 +{p2} +127\.0\.0\.1:\d+ .*connected")

        # The second server's #1, as the screen names it: found, then kicked with k.
        tmux.run("send-keys", "C-p")
        tmux.run("send-keys", "-l", f"#1@{p2}")
        tmux.wait_for(rf"Go to client #1@{p2}")
        tmux.run("send-keys", "Enter")
        tmux.wait_for(rf"to #1@{p2}")  # the send box names the client under the cursor
        tmux.run("send-keys", "k")
        second.wait_for(lambda line: "#1 " in line and "disconnected: kicked" in line)
        tmux.wait_for(rf"#1@{p2} • disconnected: kicked")
        nc2.ends_when_it_writes()
        nc1.echoes(b"still echoed\n")  # the first server's #1 was not touched
        assert not any("kicked" in line for line in first.lines)

        # The second server stops: said once, the first server's row stays.
        assert second.stop()[0] == 0
        tmux.wait_for(rf"server {p2} \(pid {second.proc.pid}\) stopped; its clients are not shown")
        screen = tmux.screen()
        assert screen.count(f"server {p2} (pid {second.proc.pid}) stopped") == 1
        tmux.wait_for(rf"#1 +{p1} +127\.0\.0\.1:\d+ .*connected")
        nc1.echoes(b"carries on\n")
        tmux.run("send-keys", "q")
        tmux.wait_for(r"(?m)^exit=0$")
        assert first.proc.poll() is None  # detached: the first server carries on

        # A bad target among them: one line, exit 2, nothing attached.
        tmux.run("send-keys", "clear", "Enter")
        tmux.run("send-keys", f"{command} attach {p1} 1; echo exit=$?", "Enter")
        tmux.wait_for(r"(?m)^exit=2$")
        lines = [line for line in tmux.screen().splitlines() if line.strip() and "exit=" not in line]
        errors = [line for line in lines if line.startswith("tui-echo attach: error:")]
        assert len(errors) == 1 and "port 1" in errors[0], lines
