"""``ctl clients --filter`` and ``ctl kick --filter`` with 10,000 real clients on the installed server (heavy).

The clients come from four loopback addresses (127.0.0.1 to 127.0.0.4, 2,500 each), so that a network
filter picks a quarter; a label picks one. Nothing here is timed.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import TIMEOUT
from .many_clients import all_read, open_files_for, totals, wait_until
from .process import HeadlessProcess, run_cli

CLIENTS = 10_000
HOSTS = 4
pytestmark = pytest.mark.heavy


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[HeadlessProcess, Path]]:
    path = tmp_path / "control.sock"
    with open_files_for(CLIENTS):
        process = HeadlessProcess("--control", str(path))
        yield process, path
        process.close()


def _open(port: int) -> list[socket.socket]:
    clients = []
    for n in range(CLIENTS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.bind((f"127.0.0.{n % HOSTS + 1}", 0))
        sock.connect(("127.0.0.1", port))
        clients.append(sock)
    return clients


def _ids(path: Path, expression: str) -> list[int]:
    done = run_cli(["ctl", str(path), "clients", "--json", "--filter", expression])
    assert done.returncode == 0, done.stderr
    return [record["client"] for record in json.loads(done.stdout)]


def test_filter_and_kick_by_filter_among_ten_thousand(server: tuple[HeadlessProcess, Path]) -> None:
    process, path = server
    clients = _open(process.port)
    try:
        wait_until(lambda: totals(path)["clients_now"] == CLIENTS, "10,000 clients counted")
        everyone = _ids(path, "")
        assert len(everyone) == CLIENTS
        assert _ids(path, "#1234") == [1234]
        assert len(_ids(path, "127.0.0.2")) == CLIENTS // HOSTS
        assert len(_ids(path, "127.0.0.0/30")) == 3 * CLIENTS // HOSTS  # .1, .2, .3 (.0 is none of them)
        port = clients[4321].getsockname()[1]
        assert 4322 in _ids(path, f":{port}")
        assert run_cli(["ctl", str(path), "label", "777", "the one"]).returncode == 0
        assert _ids(path, "the one") == [777]

        # A quarter of them by address, in one command: exactly those get EOF, the rest do not.
        refused = run_cli(["ctl", str(path), "kick", "--filter", "127.0.0.4"])
        assert refused.returncode == 2 and "2500 clients match" in refused.stderr
        done = run_cli(["ctl", str(path), "kick", "--filter", "127.0.0.4", "--yes"])
        assert (done.returncode, done.stdout, done.stderr) == (0, "kicked 2500 clients matching '127.0.0.4'\n", "")
        kicked = [client for n, client in enumerate(clients) if n % HOSTS == HOSTS - 1]
        staying = [client for n, client in enumerate(clients) if n % HOSTS != HOSTS - 1]
        assert all_read(kicked, b"") == []
        wait_until(lambda: totals(path)["clients_now"] == CLIENTS - CLIENTS // HOSTS, "7,500 left")
        for client in staying:
            client.sendall(b"x")
        assert all_read(staying, b"x") == []
    finally:
        for client in clients:
            client.close()
