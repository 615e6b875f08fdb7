"""Thousands of real clients against the installed server (a subprocess): open them, wait for the
server to count them, read from all of them at once. For the heavy tests."""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tui_echo.control.client import Connection, ConsoleError

from .helpers import TIMEOUT

BATCH = 1000  # clients connected before the next batch: well inside the listen queue (somaxconn 4096 here)
SETTLE_TIMEOUT = 120  # for the server to hold thousands of clients (and their bytes) on a busy machine


@contextmanager
def open_files_for(clients: int) -> Iterator[None]:
    """Room for ``clients`` sockets in this process (the server raises its own limit), or skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < clients + 200:
        pytest.skip(f"{clients} clients need {clients + 200} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_clients(port: int, count: int) -> list[socket.socket]:
    clients: list[socket.socket] = []
    while len(clients) < count:
        batch = min(BATCH, count - len(clients))
        clients += [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(batch)]
    return clients


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def totals(path: Path) -> dict[str, int]:
    """The server's totals, from a snapshot on its control socket; none while it cannot answer in time
    (a server busy with thousands of clients on a machine shared many ways: ask again)."""
    try:
        connection = Connection.open(path, events=False, role="list")
    except ConsoleError:
        return {}
    connection.close()
    return dict(connection.snapshot["totals"])


def all_read(clients: list[socket.socket], expected: bytes) -> list[int]:
    """Every client reads ``expected`` whole (b"" for EOF); the indexes of those that read something else."""
    got = {index: b"" for index in range(len(clients))}
    pending = set(got)
    with selectors.DefaultSelector() as selector:
        for index, client in enumerate(clients):
            client.setblocking(False)
            selector.register(client, selectors.EVENT_READ, index)
        deadline = time.monotonic() + TIMEOUT
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1.0):
                index = key.data
                try:
                    data = clients[index].recv(65536)
                except ConnectionResetError:
                    data, got[index] = b"", b"RESET"
                got[index] += data
                if not data or len(got[index]) >= max(len(expected), 1):
                    selector.unregister(clients[index])
                    pending.discard(index)
    for client in clients:
        client.setblocking(True)
    return [index for index, data in got.items() if data != expected or index in pending]
