"""Every console at the default cap: 10,000 real clients on the installed server (headless, a subprocess).

`ctl clients --json` lists them all, `list` counts them, `ctl kick N` and `ctl broadcast` work, a
`tui-echo events` console keeps up, and the attached monitor's mirror (``RemoteSource``, what
`attach` and `web` draw from) holds exactly the server's clients and counts: after a snapshot of
10,000, after counts of 10,000 changed clients, after the kick. Then a stop: every client gets EOF.
Nothing here is timed (``benchmarks/bench_stop.py`` times the stop).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tui_echo.control.client import Connection
from tui_echo.monitor.remote import RemoteSource

from .helpers import TIMEOUT
from .many_clients import SETTLE_TIMEOUT, all_read, open_clients, open_files_for, totals, wait_until
from .process import HeadlessProcess, LineReader, run_cli, tui_echo_command

CLIENTS = 10_000
# Heavy: 10,000 sockets in two processes. The limit for a hang is longer than the suite's: on a machine
# shared many ways the server takes a while to hold them all (waits have their own timeouts).
pytestmark = [pytest.mark.heavy, pytest.mark.timeout(300)]


@pytest.fixture
def clients_allowed() -> Iterator[None]:
    with open_files_for(CLIENTS):
        yield


def clients_now(path: Path) -> int | None:
    return totals(path).get("clients_now")


async def _mirror(path: Path, clients: list[socket.socket], kicked: int) -> None:
    """The attached monitor's mirror through a 10,000-client snapshot, paged counts and a kick."""
    source = RemoteSource(Connection.open(path, events=True))
    assert len(list(source.clients())) == CLIENTS and source.totals().clients_now == CLIENTS
    stopped: list[BaseException | None] = []
    source.start(stopped.append)

    async def until(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            assert not stopped, f"the mirror lost the server: {source.gone_reason}"
            assert time.monotonic() < deadline, f"the mirror: not within {TIMEOUT} s: {what}"
            await asyncio.sleep(0.05)

    try:
        for client in clients:  # every client talks: the counts of all 10,000 change at once
            client.sendall(b"x")
        assert await asyncio.to_thread(all_read, clients, b"x") == []
        await until(lambda: all(state.messages_in == 1 for state in source.clients()), "every client's count")
        assert source.totals().messages_in == CLIENTS

        done = await asyncio.to_thread(run_cli, ["ctl", str(path), "kick", str(kicked)])
        assert done.returncode == 0, done.stderr
        await until(lambda: len(list(source.clients())) == CLIENTS - 1, "the kicked client gone")
        assert kicked not in {state.client_id for state in source.clients()}
        assert source.totals().clients_now == CLIENTS - 1
    finally:
        await source.stop()


def test_every_console_works_with_10000_clients(clients_allowed: None, tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    server = HeadlessProcess("--control", str(path))
    events: subprocess.Popen[str] | None = None
    clients: list[socket.socket] = []
    try:
        clients = open_clients(server.port, CLIENTS)
        wait_until(lambda: clients_now(path) == CLIENTS, f"the server counts {CLIENTS} clients", SETTLE_TIMEOUT)

        done = run_cli(["ctl", str(path), "clients", "--json"])
        assert done.returncode == 0, done.stderr
        listed = json.loads(done.stdout)
        assert len(listed) == CLIENTS and len({record["client"] for record in listed}) == CLIENTS
        ports = {int(record["peer"].rsplit(":", 1)[1]) for record in listed}
        assert ports == {client.getsockname()[1] for client in clients}

        done = run_cli(["list", "--json"])
        assert done.returncode == 0, done.stderr
        assert [
            json.loads(line)["clients_now"]
            for line in done.stdout.splitlines()
            if json.loads(line)["socket"] == str(path)
        ] == [CLIENTS]

        events = subprocess.Popen(
            [tui_echo_command(), "events", str(path), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert events.stdout is not None
        lines = LineReader(events.stdout)
        by_port = {int(record["peer"].rsplit(":", 1)[1]): record["client"] for record in listed}
        kicked_client = clients[4321]
        kicked = by_port[kicked_client.getsockname()[1]]

        asyncio.run(_mirror(path, clients, kicked))
        assert kicked_client.recv(1) == b""  # the kicked one got its EOF
        gone = json.loads(lines.wait_for(lambda line: '"disconnected"' in line and f'"client":{kicked},' in line))
        assert gone["clients_now"] == CLIENTS - 1

        survivors = [client for client in clients if client is not kicked_client]
        done = run_cli(["ctl", str(path), "broadcast", "hello all\\n"])
        assert done.returncode == 0, done.stderr
        assert all_read(survivors, b"hello all\n") == []

        code, _ = server.stop(signal.SIGTERM)
        assert code == 0
        assert all_read(survivors, b"") == []  # every client gets a clean EOF (no reset)
        lines.wait_for(lambda line: '"stopped"' in line)
        assert events.wait(TIMEOUT) == 0
    finally:
        for client in clients:
            client.close()
        if events is not None:
            if events.poll() is None:
                events.kill()
                events.wait()
            for stream in (events.stdout, events.stderr):  # closed now, not warned about in a later test
                if stream is not None:
                    stream.close()
        server.close()
