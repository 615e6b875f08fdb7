"""10,000 connections that send half a PROXY header, against a real server process: each is refused at the
header timeout and counted, the server's memory per waiting connection is bounded, and a client already
served keeps its echo and its exact counts throughout."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_echo.control.client import Connection, ConsoleError

from .helpers import TIMEOUT
from .process import HeadlessProcess
from .test_proxy_header import v1
from .test_tls_stream import rss_mib

pytestmark = pytest.mark.heavy

FLOOD = 10_000
HALF = b"PROXY TCP4 192.0.2.7 127.0.0"  # and never the rest


def totals(control: Path) -> dict:
    """The server's totals, asking again while it is too busy to answer (10,000 refusals at once, a busy machine)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            connection = Connection.open(control, events=False, role="list")
        except ConsoleError:
            if time.monotonic() > deadline:
                raise
            continue
        connection.close()
        return dict(connection.snapshot["totals"])


def echo(sock: socket.socket, data: bytes) -> None:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(len(data) - len(got))
        assert chunk, "the served client was closed"
        got += chunk
    assert got == data


@pytest.fixture
def open_files() -> Iterator[None]:
    """This process holds the 10,000 clients: its soft limit on open files up to the hard one, meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
        pytest.skip(f"{FLOOD} clients need {FLOOD + 200} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_10000_half_headers_cost_a_bounded_amount_are_refused_and_counted_and_leave_a_client_alone(
    tmp_path: Path, open_files: None
) -> None:
    control = tmp_path / "s.sock"
    server = HeadlessProcess(
        "--proxy-protocol", "--proxy-header-timeout", "4", "--max-clients", str(FLOOD + 1), "--control", str(control)
    )
    flood: list[socket.socket] = []
    try:
        served = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        flood.append(served)  # closed with the flood, whatever happens
        served.sendall(v1("TCP4", "192.0.2.1", "127.0.0.1", 1000, server.port))
        echo(served, b"before\n")
        before = rss_mib(server.proc.pid)
        for _ in range(FLOOD):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
            sock.sendall(HALF)
            flood.append(sock)
        echo(served, b"during\n")
        peak = rss_mib(server.proc.pid)
        per_connection_kib = (peak - before) * 1024 / FLOOD
        print(f"RSS {before:.1f} MiB -> {peak:.1f} MiB with {FLOOD} half headers: {per_connection_kib:.1f} KiB each")
        assert per_connection_kib < 16, f"{per_connection_kib:.1f} KiB per connection reading its header"
        deadline = time.monotonic() + TIMEOUT + 4
        while totals(control)["refused_by_reason"].get("bad proxy header", 0) < FLOOD:
            assert time.monotonic() < deadline, totals(control)
            time.sleep(0.2)
        done = totals(control)
        assert done["refused_by_reason"] == {"bad proxy header": FLOOD}
        assert (done["clients_total"], done["clients_now"]) == (1, 1)
        echo(served, b"after\n")
        assert totals(control)["messages_in"] == 3
        for sock in flood[1:101]:  # half headers (flood[0] is the served client): each was closed by the server
            sock.settimeout(TIMEOUT)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
    finally:
        for sock in flood:
            sock.close()
        server.stop()
        server.close()
