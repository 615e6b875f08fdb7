"""``tui-echo ctl`` with labels and --filter, against the installed command and real clients (issue 18)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_echo.control.client import Connection
from tui_echo.monitor.remote import RemoteSource
from tui_echo.server.commands import ClientAction, ForClients, Label
from tui_echo.server.events import ServerNotice

from .helpers import TIMEOUT
from .process import HeadlessProcess, run_cli


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[HeadlessProcess, Path]]:
    path = tmp_path / "control.sock"
    process = HeadlessProcess("--control", str(path))
    yield process, path
    process.close()


def _clients(port: int, count: int) -> list[socket.socket]:
    clients = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(count)]
    for client in clients:  # each has been served once it echoes
        client.sendall(b"hi\n")
        assert client.recv(16) == b"hi\n"
    return clients


def _closed(client: socket.socket) -> bool:
    client.settimeout(TIMEOUT)
    return client.recv(16) == b""


def _ids(path: Path, *args: str) -> list[int]:
    done = run_cli(["ctl", str(path), "clients", "--json", *args])
    assert done.returncode == 0, done.stderr
    return [record["client"] for record in json.loads(done.stdout)]


def test_label_then_clients_and_kick_by_filter(server: tuple[HeadlessProcess, Path]) -> None:
    process, path = server
    clients = _clients(process.port, 5)
    try:
        for client_id, name in ((1, "alice"), (2, "bob"), (3, "the sensor"), (4, "evil\x1b[2J")):
            done = run_cli(["ctl", str(path), "label", str(client_id), name])
            assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        # The headless log says it, with the label (escaped) next to the id from then on.
        process.wait_for(lambda line: "#1 “alice” 127.0.0.1:" in line and "labelled by the operator" in line)
        process.wait_for(lambda line: "#4 “evil\\x1b[2J” 127.0.0.1:" in line)

        table = run_cli(["ctl", str(path), "clients", "--filter", "ALICE"])
        assert table.returncode == 0
        header, *rows = table.stdout.splitlines()
        assert header.split()[-1] == "LABEL"
        assert [row.split()[0] for row in rows] == ["#1"] and "alice" in rows[0]
        escaped = run_cli(["ctl", str(path), "clients", "--filter", "evil"])
        assert "\x1b" not in escaped.stdout and "evil\\x1b[2J" in escaped.stdout

        assert _ids(path, "--filter", "alice|bob") == [1, 2]
        assert _ids(path, "--filter", "!alice|bob") == [3, 4, 5]
        assert _ids(path, "--filter", "/sens/") == [3]
        assert _ids(path, "--filter", "127.0.0.1") == [1, 2, 3, 4, 5]
        assert _ids(path, "--filter", "#5") == [5]

        bad = run_cli(["ctl", str(path), "clients", "--filter", "/(oops/"])
        assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "bad regex" in bad.stderr

        # More than one match without --yes: exit 2, and nobody is kicked.
        refused = run_cli(["ctl", str(path), "kick", "--filter", "alice|bob"])
        assert refused.returncode == 2 and refused.stdout == ""
        assert "2 clients match 'alice|bob': add --yes" in refused.stderr
        assert _ids(path) == [1, 2, 3, 4, 5]
        neither = run_cli(["ctl", str(path), "kick"])
        assert neither.returncode == 2 and "give a client ID or --filter EXPR, one of them" in neither.stderr

        kicked = run_cli(["ctl", str(path), "kick", "--filter", "alice|bob", "--yes"])
        assert (kicked.returncode, kicked.stdout) == (0, "kicked 2 clients matching 'alice|bob'\n")
        assert _closed(clients[0]) and _closed(clients[1])
        one = run_cli(["ctl", str(path), "kick", "--filter", "#5"])  # one match: no --yes needed
        assert (one.returncode, one.stdout) == (0, "kicked 1 client matching '#5'\n")
        assert _closed(clients[4])
        none = run_cli(["ctl", str(path), "kick", "--filter", "nobody"])
        assert (none.returncode, none.stdout) == (0, "no client matches 'nobody': none kicked\n")
        for client in clients[2:4]:  # the others are still echoed
            client.sendall(b"still\n")
            assert client.recv(16) == b"still\n"
        deadline = time.monotonic() + TIMEOUT
        while _ids(path) != [3, 4]:
            assert time.monotonic() < deadline
    finally:
        for client in clients:
            client.close()


def test_an_attached_source_carries_labels_and_commands_for_many(server: tuple[HeadlessProcess, Path]) -> None:
    """``RemoteSource`` (the attached monitor's): what the monitor's N, tags and filtered kick send."""
    process, path = server
    clients = _clients(process.port, 4)

    async def watch() -> None:
        source = RemoteSource(Connection.open(path, events=True))
        source.start(lambda error: None)
        notices: list[str] = []

        async def until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
            deadline = time.monotonic() + TIMEOUT
            while not predicate():
                notices.extend(e.message for e in source.take_events(1000) if isinstance(e, ServerNotice))
                assert time.monotonic() < deadline, what
                await asyncio.sleep(0.01)

        try:
            await until(lambda: source.send(Label(2, "carol")), "the connection up")  # False until it is
            await until(lambda: {s.client_id: s.label for s in source.clients()}.get(2) == "carol", "the label")
            assert source.send(ForClients(ClientAction.KICK, (1, 2, 42)))
            await until(lambda: sorted(s.client_id for s in source.clients()) == [3, 4], "two kicked")
            await until(lambda: "kicked 2 clients of 3; 1 client already gone (#42)" in notices, "the count")
        finally:
            await source.stop()

    try:
        asyncio.run(watch())
        assert _closed(clients[0]) and _closed(clients[1])
        clients[2].sendall(b"ok\n")
        assert clients[2].recv(16) == b"ok\n"
    finally:
        for client in clients:
            client.close()
