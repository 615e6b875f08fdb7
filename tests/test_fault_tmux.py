"""The installed command in a real terminal (tmux), a real ``nc`` under ``latency=500ms``: it visibly waits."""

from __future__ import annotations

import re
import shlex
import time

import pytest

from .helpers import TIMEOUT
from .process import needs_tool, tui_echo_command
from .test_e2e_tmux import Tmux, tmux  # noqa: F401  (tmux: the fixture)

pytestmark = pytest.mark.terminal


def pane(session: Tmux, target: str) -> str:
    return session.run("capture-pane", "-p", "-t", target)


def wait_in(session: Tmux, target: str, pattern: str) -> float:
    """When ``pattern`` was first seen in the pane (monotonic); polled, so never earlier than it appeared."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if re.search(pattern, pane(session, target)):
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"{pattern!r} never appeared in {target}:\n{pane(session, target)}")


def test_nc_under_latency_500ms_visibly_waits_and_the_table_shows_the_fault(tmux: Tmux) -> None:  # noqa: F811
    nc = needs_tool("nc")
    tmux.run("send-keys", f"{shlex.quote(tui_echo_command())} --port 0 --fault latency=500ms; echo exit=$?", "Enter")
    port = int(tmux.wait_for(r"listening 127\.0\.0\.1:(\d+)").group(1))
    tmux.run("new-window", "-d", "-n", "nc", f"{nc} 127.0.0.1 {port}")
    wait_in(tmux, ":0", r"#1 +127\.0\.0\.1:\d+")
    typed = time.monotonic()
    tmux.run("send-keys", "-t", ":nc", "hello late", "Enter")
    echoed = wait_in(tmux, ":nc", r"hello late\s*\n\s*hello late")  # the typed line, then its echo
    assert echoed - typed >= 0.5
    wait_in(tmux, ":0", r"#1 +127\.0\.0\.1:\d+ .* fault +faulted latency")  # idle and status, cut to 120 columns
    wait_in(tmux, ":0", r"fault set: latency=500ms \(by --fault\)")
    tmux.run("kill-window", "-t", ":nc")
    tmux.run("send-keys", "-t", ":0", "q")
    tmux.wait_for(r"(?m)^exit=0$")
