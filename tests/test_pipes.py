"""Every command that writes ends quietly when its reader goes away (``| head``): no traceback, its exit code.

Real pipes: the real ``head`` where the issue met it, and pipes whose reader has gone before the first write.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import TIMEOUT
from .process import HeadlessProcess, needs_tool, tui_echo_command


@pytest.fixture
def headless(tmp_path: Path) -> Iterator[HeadlessProcess]:
    server = HeadlessProcess("--control", str(tmp_path / "control.sock"))
    yield server
    server.close()


def into_head(args: list[str], head_args: list[str]) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """``tui-echo ARGS | head HEAD_ARGS`` (the real head): both processes, the command's stderr captured."""
    command = subprocess.Popen([tui_echo_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen([needs_tool("head"), *head_args], stdin=command.stdout, stdout=subprocess.PIPE)
    assert command.stdout is not None
    command.stdout.close()  # head holds the only reading end: when it exits, the pipe has no reader
    return command, head


def ended_quietly(command: subprocess.Popen[bytes], code: int = 0) -> None:
    assert command.wait(TIMEOUT) == code
    assert command.stderr is not None
    assert command.stderr.read() == b""
    command.stderr.close()


def events_read_until_a_line(port: int, *args: str) -> tuple[subprocess.Popen[bytes], list[socket.socket]]:
    """``tui-echo events PORT ARGS`` into a pipe that we read as head would: clients connect (and stay) until
    its first line comes, then the reader goes away. Returns the console and the clients."""
    command = subprocess.Popen(
        [tui_echo_command(), "events", str(port), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert command.stdout is not None
    clients: list[socket.socket] = []
    deadline = time.monotonic() + TIMEOUT
    while not select.select([command.stdout], [], [], 0.2)[0]:  # it may not have attached yet: try again
        assert time.monotonic() < deadline, "no line from tui-echo events"
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
    assert b"connected" in os.read(command.stdout.fileno(), 65536)
    command.stdout.close()  # the reader goes away
    return command, clients


def test_events_json_whose_reader_went_away_ends_quietly_at_the_next_event(headless: HeadlessProcess) -> None:
    command, clients = events_read_until_a_line(headless.port, "--json")
    with socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT) as client:
        client.sendall(b"one\n")  # events: data, and the next lines; the first write meets no reader
        assert client.recv(100) == b"one\n"
        ended_quietly(command)
    for client in clients:
        client.close()


def test_events_whose_reader_went_away_ends_quietly_on_a_server_with_nothing_more_to_say(
    headless: HeadlessProcess,
) -> None:
    # No event will ever come again, so no write can find out: the console asks its stdout now and then.
    command, clients = events_read_until_a_line(headless.port)
    ended_quietly(command)
    for client in clients:
        client.close()


def test_ctl_clients_json_into_head_c_600_ends_quietly(headless: HeadlessProcess) -> None:
    clients = [socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT) for _ in range(400)]
    try:
        headless.wait_for_text("(400 now)")
        # Some 70 KiB of JSON: more than the pipe holds, so head surely leaves in the middle of the write.
        command, head = into_head(["ctl", str(headless.port), "clients", "--json"], ["-c", "600"])
        out, _ = head.communicate(timeout=TIMEOUT)
        assert len(out) == 600 and out.startswith(b'[{"peer": "127.0.0.1:')
        ended_quietly(command)
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["list"],
        ["list", "--json"],
        ["ctl", "{port}", "clients"],
        ["ctl", "{port}", "clients", "--json"],
        ["ctl", "{port}", "rules"],
        ["ctl", "--help"],
        ["events", "--help"],
        ["load", "{port}", "-c", "2", "-d", "0.2"],
        ["load", "{port}", "-c", "2", "-d", "0.2", "--json"],
    ],
    ids=lambda args: " ".join(args),
)
def test_a_command_whose_reader_has_gone_ends_quietly(headless: HeadlessProcess, args: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first write
    try:
        command = subprocess.Popen(
            [tui_echo_command(), *(arg.format(port=headless.port) for arg in args)],
            stdout=write,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(write)
    ended_quietly(command)
