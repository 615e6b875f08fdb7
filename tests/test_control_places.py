"""The control socket's places: sockets that connect and never say hello cannot lock consoles out; 64 attached
consoles are the cap, and the 65th is told so in one line."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tui_echo.control import protocol
from tui_echo.control.places import MAX_CONSOLES, MAX_WAITING

from .helpers import TIMEOUT
from .process import HeadlessProcess, run_cli


def silent(path: Path) -> socket.socket:
    """A socket that connects, reads the server's hello (so it is surely accepted), and says nothing."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(str(path))
    assert json.loads(sock.makefile("rb").readline())["type"] == "hello"
    return sock


def said_hello(path: Path) -> socket.socket:
    """A console past its hello (asking for no events: it holds a place and reads nothing more)."""
    sock = silent(path)
    sock.sendall(protocol.encode_line(protocol.hello("console", events=False)))
    return sock


def first_message(sock: socket.socket) -> dict[str, Any] | None:
    line = sock.makefile("rb").readline()
    return json.loads(line) if line else None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[HeadlessProcess, Path]]:
    path = tmp_path / "control.sock"
    process = HeadlessProcess("--control", str(path))
    yield process, path
    process.close()


def test_silent_sockets_never_lock_ctl_out(server: tuple[HeadlessProcess, Path]) -> None:
    process, path = server
    squatters: list[socket.socket] = []
    try:
        squatters += [silent(path) for _ in range(MAX_CONSOLES)]
        done = run_cli(["ctl", str(path), "clients"])
        assert (done.returncode, done.stderr) == (0, "")
        # Past MAX_WAITING, each newcomer pushes the longest-waiting silent socket out, and says so once.
        squatters += [silent(path) for _ in range(MAX_WAITING)]
        for sock in squatters[:MAX_CONSOLES]:
            assert sock.recv(100) == b""  # closed to make room
        done = run_cli(["ctl", str(path), "clients"])
        assert done.returncode == 0, done.stderr
        notice = process.wait_for_text("connections wait for their hello")
        assert "closing the longest-waiting to make room (said once)" in notice
    finally:
        for sock in squatters:
            sock.close()


def test_64_attached_consoles_are_the_cap_and_the_next_is_told_so(server: tuple[HeadlessProcess, Path]) -> None:
    _, path = server
    consoles: list[socket.socket] = []
    try:
        consoles.append(waiting := silent(path))  # connected before the places filled up; it says hello after
        consoles += [said_hello(path) for _ in range(MAX_CONSOLES)]
        for sock in consoles[1:]:
            assert (first_message(sock) or {}).get("type") == "snapshot"
        refused = run_cli(["ctl", str(path), "clients"])
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1 and f"{MAX_CONSOLES} consoles are attached already" in refused.stderr
        waiting.sendall(protocol.encode_line(protocol.hello("console", events=False)))
        assert first_message(waiting) == protocol.error_message(
            protocol.ProtocolError("too_many_consoles", f"{MAX_CONSOLES} consoles are attached already")
        )
        consoles.pop().close()  # a place is free again
        done = run_cli(["ctl", str(path), "clients"])
        assert done.returncode == 0, done.stderr
    finally:
        for sock in consoles:
            sock.close()
