"""Finding one client among 2,000, with the installed tui-echo in a real terminal (tmux) and real clients:
filter by a peer's port, go to #1234, group by address, tag two and kick them (only they get EOF).

Nothing here is timed: how fast a filter or a go-to answers is ``benchmarks/bench_monitor.py``'s.
"""

from __future__ import annotations

import resource
import selectors
import shlex
import socket
import subprocess
from collections.abc import Iterator

import pytest

from .helpers import TIMEOUT
from .process import needs_tool, tui_echo_command
from .test_e2e_tmux import Tmux

CLIENTS = 2_000
GROUPED = 10  # of them from 127.0.0.2, the rest from 127.0.0.1
pytestmark = pytest.mark.heavy  # thousands of sockets: one at a time, with the other heavy tests


@pytest.fixture
def clients_allowed() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CLIENTS + 200:
        pytest.skip(f"{CLIENTS} clients need {CLIENTS + 200} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def row_port(tmux: Tmux, client_id: int) -> int:
    """The port of a client's row on screen."""
    return int(tmux.wait_for(rf"(?m)^[ ✔]*#{client_id} +127\.0\.0\.\d+:(\d+) ").group(1))  # tagged or not


def readable(clients: list[socket.socket]) -> list[socket.socket]:
    """The clients with something to read now (here: only an EOF, as nothing is sent to them)."""
    with selectors.DefaultSelector() as selector:
        for client in clients:
            selector.register(client, selectors.EVENT_READ)
        return [key.fileobj for key, _ in selector.select(0)]  # type: ignore[misc]


def test_filter_by_port_go_to_group_tag_two_and_kick_them_among_2000_real_clients(clients_allowed: None) -> None:
    tmux = Tmux(needs_tool("tmux"))
    tmux.run("new-session", "-d", "-x", "120", "-y", "40", "env PS1='$ ' bash --norc --noprofile")
    clients: list[socket.socket] = []
    try:
        tmux.run("send-keys", f"{shlex.quote(tui_echo_command())} --port 0; echo exit=$?", "Enter")
        port = int(tmux.wait_for(r"listening 127\.0\.0\.1:(\d+)").group(1))
        for n in range(CLIENTS):
            host = "127.0.0.2" if n >= CLIENTS - GROUPED else "127.0.0.1"
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT, source_address=(host, 0)))
        by_port = {client.getsockname()[1]: client for client in clients}
        tmux.wait_for(rf"Connections · {CLIENTS} now")

        # Filter by a peer's port: one row, and the stats bar says what the table shows.
        wanted = clients[1499].getsockname()[1]
        tmux.run("send-keys", "/", f":{wanted}", "Enter")
        tmux.wait_for(rf"showing 1 of 2,000 · filter: :{wanted}")
        tmux.wait_for(rf"(?m)^.\s*#\d+ +127\.0\.0\.1:{wanted} ")
        tmux.run("send-keys", "/", "Escape")  # Esc in the prompt clears the filter
        tmux.wait_for(r"(?m)^.\s*#1 +127\.0\.0\.1:\d+ ")
        tmux.wait_for(r"clients 2000 now · 2000 peak")  # the stats bar's note gone with the filter

        # Group by address: one row per machine, with the number of clients.
        tmux.run("send-keys", "G")
        tmux.wait_for(r"grouped by address")
        tmux.wait_for(rf"(?m)^ *▸ *{CLIENTS - GROUPED}× +127\.0\.0\.1 ")
        tmux.wait_for(rf"(?m)^ *▸ *{GROUPED}× +127\.0\.0\.2 ")
        tmux.run("send-keys", "G")
        tmux.wait_for(r"(?m)^.\s*#1 +127")
        tmux.wait_for(r"clients 2000 now · 2000 peak")  # no "grouped by address" any more

        # Go to #1234 from the palette: the cursor's row (the send box names it) is on screen.
        tmux.run("send-keys", "C-p")
        tmux.wait_for(r"Search for commands")
        tmux.run("send-keys", "#1234")
        tmux.wait_for(r"Go to client #1234")
        tmux.run("send-keys", "Enter")
        tmux.wait_for(r"to #1234\b")
        row_port(tmux, 1234)

        # Tag two (space tags and moves on) and kick them after one question with the count.
        tmux.run("send-keys", "Space", "Space")
        tmux.wait_for(r"2 tagged")
        kicked = [by_port[row_port(tmux, 1234)], by_port[row_port(tmux, 1235)]]
        tmux.run("send-keys", "k")
        tmux.wait_for(r"Kick the tagged 2 clients \(#1234, #1235\)\?")
        tmux.run("send-keys", "y")
        for client in kicked:
            assert client.recv(1) == b""  # a clean EOF
        tmux.wait_for(rf"Connections · {CLIENTS - 2} now")
        others = [client for client in clients if client not in kicked]
        assert readable(others) == []  # no EOF (nor anything else) for the other 1,998

        tmux.run("send-keys", "q")
        for client in others:
            assert client.recv(1) == b""
        tmux.wait_for(r"exit=0")
    finally:
        for client in clients:
            client.close()
        subprocess.run([tmux.tmux, "-L", tmux.socket, "kill-server"], capture_output=True)
