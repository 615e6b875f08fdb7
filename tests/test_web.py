"""``tui-echo web`` against real processes: a headless server, a real client, the web server, and a real
headless browser (the system's chromium, driven by playwright) that kicks the client with ``k``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from .helpers import TIMEOUT
from .process import HeadlessProcess, LineReader, needs_tool, run_cli, tui_echo_command

# No network, no first-run work, no GPU: the test runs offline, in a container, without a display.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


class Web(LineReader):
    """``tui-echo web TARGET --http-port 0``, with the URL it prints."""

    def __init__(self, target: str) -> None:
        self.proc = subprocess.Popen(
            [tui_echo_command(), "web", target, "--http-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        super().__init__(self.proc.stdout)
        self.url = self.wait_for(lambda line: "?token=" in line).strip()
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", self.url)
        assert match, self.url
        self.base = f"http://127.0.0.1:{match.group(1)}"
        self.token = match.group(2)
        self.cookie = f"tui-echo-web-{match.group(1)}"  # one per port: two web servers keep their own

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def headless(tmp_path: Path) -> Iterator[tuple[HeadlessProcess, Path]]:
    path = tmp_path / "control.sock"
    server = HeadlessProcess("--control", str(path))
    yield server, path
    server.close()


@pytest.fixture
def web(headless: tuple[HeadlessProcess, Path]) -> Iterator[Web]:
    process = Web(str(headless[1]))
    yield process
    process.close()


def status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=TIMEOUT) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_without_the_token_every_request_is_refused(web: Web) -> None:
    for path in ("/", "/ws", "/static/js/textual.js", f"/?token={web.token[:-1]}", "/?token="):
        assert status(web.base + path) == 403, path
    assert status(web.base + "/ws", {"Cookie": f"{web.cookie}=wrong"}) == 403
    assert status(web.base + "/static/js/textual.js", {"Cookie": f"tui-echo-web-1={web.token}"}) == 403
    assert status(web.base + "/static/js/textual.js", {"Cookie": f"{web.cookie}={web.token}"}) == 200
    # Another site's page, with the cookie the browser would send along: refused all the same.
    cross = {"Cookie": f"{web.cookie}={web.token}", "Origin": "http://evil.example"}
    assert status(web.base + "/static/js/textual.js", cross) == 403


def test_the_page_loads_nothing_from_another_host(web: Web) -> None:
    with urllib.request.urlopen(web.url, timeout=TIMEOUT) as reply:
        assert f"{web.cookie}={web.token};" in reply.headers["Set-Cookie"] and "HttpOnly" in reply.headers["Set-Cookie"]
        html = reply.read().decode()
    assert set(re.findall(r"//([\w.-]+)", html)) == {"127.0.0.1"}  # the websocket's URL, and nothing else
    assert "/static/js/textual.js" in html and "/static/fonts/RobotoMono" in html  # served by tui-echo web


def test_web_errors_are_one_line_and_exit_2(headless: tuple[HeadlessProcess, Path], tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = os.environ | {"XDG_RUNTIME_DIR": str(runtime)}
    nothing = subprocess.run(
        [tui_echo_command(), "web"], capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False
    )
    assert (nothing.returncode, nothing.stdout) == (2, "")
    assert (
        nothing.stderr.startswith("tui-echo web: error: no running tui-echo server") and nothing.stderr.count("\n") == 1
    )
    gone = run_cli(["web", str(tmp_path / "nobody.sock")])
    assert gone.returncode == 2 and gone.stderr.count("\n") == 1 and "no control socket at" in gone.stderr
    bad = run_cli(["web", str(headless[1]), "--http-port", "70000"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "expected a whole number" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli(["web", str(headless[1]), "--http-port", str(port)])
    assert (busy.returncode, busy.stdout) == (2, "")
    assert busy.stderr == f"tui-echo web: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_a_tab_while_the_server_is_down_says_so(headless: tuple[HeadlessProcess, Path], web: Web) -> None:
    server, _ = headless
    assert status(web.url) == 200
    server.stop()
    assert status(web.url) == 503  # not a blank page: the tab's console could not attach


def test_in_a_browser_k_kicks_the_client(headless: tuple[HeadlessProcess, Path], web: Web, tmp_path: Path) -> None:
    chromium = needs_tool("chromium")
    server, _ = headless
    victim = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    bystander = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    for client in (victim, bystander):
        client.sendall(b"hello\n")
        assert client.recv(100) == b"hello\n"
    hosts: set[str] = set()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 640})
            page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
            page.goto(web.url)
            page.wait_for_selector("body.-first-byte", timeout=TIMEOUT * 1000)  # the tab's console draws
            page.locator("textarea.xterm-helper-textarea").focus()  # where xterm.js takes keys
            kick_from(page, victim)
            line = server.wait_for_text("#1 kicked by console uid")
            assert int(line.rsplit(" ", 1)[1]) in children(web.proc.pid)  # by the tab's own tui-echo attach
            page.screenshot(path=str(tmp_path / "web.png"))  # for a person to look at when this fails
        finally:
            browser.close()
    assert hosts == {web.base.removeprefix("http://")}  # every request went to tui-echo web
    bystander.sendall(b"still here\n")
    assert bystander.recv(100) == b"still here\n"
    victim.close()
    bystander.close()


def kick_from(page: Page, victim: socket.socket) -> None:
    """Press ``k`` until the victim sees EOF: the first presses may come before the table has its row."""
    victim.settimeout(0.5)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        page.keyboard.press("k")
        try:
            data = victim.recv(100)
        except TimeoutError:
            continue
        assert data == b"", data
        return
    raise AssertionError("k in the browser never kicked the client")


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found
