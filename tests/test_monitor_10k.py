"""The installed monitor at the default cap: 10,000 real clients in a real terminal (tmux).

The server runs in its own process (the tmux pane), so this process holds only the clients' 10,000
sockets. Nothing here is timed: how fast it paints and answers is ``benchmarks/bench_monitor.py``'s.
"""

from __future__ import annotations

import re
import resource
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from .helpers import TIMEOUT
from .process import needs_tool, tui_echo_command
from .test_e2e_tmux import Tmux

CLIENTS = 10_000
# Heavy (10,000 sockets, both processes busy), so it runs one at a time with the heavy tests, not the terminal ones.
pytestmark = pytest.mark.heavy


def peers(screen: str) -> list[tuple[int, int]]:
    """The table's rows on screen, as (last byte of the address, port)."""
    return [(int(host), int(port)) for host, port in re.findall(r"(?m)^ *#\d+ +127\.0\.0\.(\d+):(\d+) ", screen)]


@pytest.fixture
def clients_allowed() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CLIENTS + 200:
        pytest.skip(f"{CLIENTS} clients need {CLIENTS + 200} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_monitor_shows_10000_clients_finds_the_last_sorts_by_peer_and_every_client_gets_eof(
    clients_allowed: None,
) -> None:
    tmux = Tmux(needs_tool("tmux"))
    tmux.run("new-session", "-d", "-x", "120", "-y", "40", "env PS1='$ ' bash --norc --noprofile")
    clients: list[socket.socket] = []
    try:
        tmux.run("send-keys", f"{shlex.quote(tui_echo_command())} --port 0; echo exit=$?", "Enter")
        port = int(tmux.wait_for(r"listening 127\.0\.0\.1:(\d+)").group(1))
        # The last ten come from 127.0.0.10 and then 127.0.0.9: as text, .10 would sort before .9.
        for n in range(1, CLIENTS + 1):
            host = "127.0.0.1" if n <= CLIENTS - 10 else "127.0.0.10" if n <= CLIENTS - 5 else "127.0.0.9"
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT, source_address=(host, 0)))
        tmux.wait_for(rf"Connections · {CLIENTS} now")

        tmux.run("send-keys", "End")  # the last row, 10,000 rows down
        tmux.wait_for(rf"(?m)^ *#{CLIENTS} +127\.0\.0\.9:\d+ .*connected")
        tmux.wait_for(rf"to #{CLIENTS}\b")

        tmux.run("send-keys", "o", "End")  # sort by the next column, the peer: an address with a numeric port
        tmux.wait_for(r"peer▲")
        deadline = time.monotonic() + TIMEOUT
        while (order := peers(tmux.screen()))[-1:] != [max(order, default=(0, 0))] and time.monotonic() < deadline:
            time.sleep(0.05)  # the sort is shown, the move to the end not yet
        assert [host for host, _ in order[-10:]] == [9] * 5 + [10] * 5 and order == sorted(order), order

        tmux.run("send-keys", "q")
        for client in clients:  # every one of them gets a clean EOF
            assert client.recv(1) == b""
        tmux.wait_for(r"exit=0")
    finally:
        for client in clients:
            client.close()
        subprocess.run([tmux.tmux, "-L", tmux.socket, "kill-server"], capture_output=True)
