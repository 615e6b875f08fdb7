"""``tui-echo web`` answers only to this machine's names in ``Host`` (127.0.0.1, localhost, [::1], any port), and its
page's websocket goes to the Host that was checked: through a real port forward (socat, as ``ssh -L`` would) too."""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import TIMEOUT
from .process import HeadlessProcess, listening_port, needs_tool
from .test_web import Web


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    server = HeadlessProcess("--control", str(tmp_path / "control.sock"))
    process = Web(str(tmp_path / "control.sock"))
    yield process
    process.close()
    server.close()


def fetch(url: str, host: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=(headers or {}) | ({"Host": host} if host is not None else {}))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            return int(reply.status), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def websocket_url(page: str) -> str:
    match = re.search(r'data-session-websocket-url="([^"]*)"', page)
    assert match, page
    return match.group(1)


REFUSED = [
    "evil.example",
    "evil.example:8000",
    "127.0.0.1.evil.example",
    "localhost.evil.example:8000",
    "evil@127.0.0.1",
    "127.0.0.2",
    "0.0.0.0:8000",
    "[::2]",
    "[::1]x",
    "::1",
    "localhost:80:80",
    "localhost:port",
    "",
]


def test_a_host_that_is_not_this_machine_is_refused_even_with_the_token(web: Web) -> None:
    cookie = {"Cookie": f"{web.cookie}={web.token}"}
    for host in REFUSED:  # a DNS-rebinding page's Host, and malformed ones
        for path in ("/?token=" + web.token, "/ws", "/static/js/textual.js"):
            status, text = fetch(web.base + path, host, cookie)
            assert status == 403, (host, path)
            assert text.startswith("tui-echo web: the Host") and text.count("\n") == 1, text


def test_this_machine_s_names_on_any_port_are_served_and_the_websocket_follows_the_host(web: Web) -> None:
    for host in ("127.0.0.1", "localhost:9000", "LocalHost:9000", "[::1]:9000", "127.0.0.1:65535"):
        status, page = fetch(web.url, host)
        assert status == 200, host
        assert websocket_url(page) == f"ws://{host}/ws"


def test_through_a_port_forward_the_page_and_its_websocket_use_the_forwarded_address(web: Web) -> None:
    """``ssh -L 9000:127.0.0.1:8000`` as socat does it: the browser asks for localhost:FORWARDED."""
    socat = needs_tool("socat")
    web_port = int(web.base.rsplit(":", 1)[1])
    forward = subprocess.Popen([socat, "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork", f"TCP:127.0.0.1:{web_port}"])
    try:
        port = listening_port(forward.pid)
        status, page = fetch(f"http://localhost:{port}/?token={web.token}")
        assert status == 200
        assert websocket_url(page) == f"ws://localhost:{port}/ws"
    finally:
        forward.kill()
        forward.wait(TIMEOUT)
