"""A browser tab's console (``tui-echo attach`` run by ``tui-echo web``) ends with its tab and with its web server,
at every stage of its start-up, in the real chromium; and it answers SIGTERM even when its quit hangs.

Consoles are found by their command line (``tui_echo attach SOCKET``, the socket being this test's own), not as
children of the web server: a console that outlived its web server belongs to init.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .helpers import TIMEOUT
from tui_echo.consoles.tab_process import WEB_PID_VARIABLE

from .process import HeadlessProcess, needs_tool, process_gone
from .test_web import CHROMIUM_ARGS, Web


def consoles_of(socket_path: Path) -> set[int]:
    """The live processes running ``tui_echo attach SOCKET`` (zombies are gone: they run nothing)."""
    found = set()
    wanted = ["tui_echo", "attach", str(socket_path)]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv[-4:-1] == wanted:  # the command line ends with a NUL: the last field is empty
            found.add(int(entry))
    return found


class ConsoleWatch:
    """Every console of one socket that ever ran while the watch was on (sampled every 10 ms by a thread)."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.seen |= consoles_of(self.socket_path)

    def wait_for_new(self, known: set[int]) -> int:
        """The pid of a console not in ``known``, once one runs."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if new := self.seen - known:
                return min(new)
            time.sleep(0.01)
        raise AssertionError(f"no new console for {self.socket_path} within {TIMEOUT} s")

    def wait_all_gone(self, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while consoles_of(self.socket_path):
            if time.monotonic() > deadline:
                left = consoles_of(self.socket_path)
                for pid in left:
                    os.kill(pid, signal.SIGKILL)  # never left behind by the test
                raise AssertionError(f"{what}: console(s) {sorted(left)} still run {TIMEOUT} s later")
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "control.sock"
    server = HeadlessProcess("--control", str(path))
    yield path
    server.close()


@pytest.fixture
def web(socket_path: Path) -> Iterator[Web]:
    process = Web(str(socket_path))
    yield process
    process.close()


@pytest.fixture
def watch(socket_path: Path) -> Iterator[ConsoleWatch]:
    watching = ConsoleWatch(socket_path)
    yield watching
    watching.close()


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = needs_tool("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def starting_tab(browser: Browser, url: str) -> Page:
    """A tab whose console is being started, and which has already sent the console a new size.

    That is what chromium does when its fonts arrive (``chromium --screenshot`` did it, then closed the tab):
    textual-serve passes the size on before the console has even loaded.
    """
    page = browser.new_page(viewport={"width": 1200, "height": 640})
    with page.expect_websocket(timeout=TIMEOUT * 1000) as opened:
        page.goto(url, wait_until="commit")
    websocket = opened.value
    websocket.wait_for_event("framesent", timeout=TIMEOUT * 1000)  # its first size, once the socket is open
    with websocket.expect_event("framesent", lambda frame: '"resize"' in str(frame), timeout=TIMEOUT * 1000):
        page.set_viewport_size({"width": 1000, "height": 500})
    return page


def drawn(page: Page) -> None:
    page.wait_for_selector("body.-first-byte", timeout=TIMEOUT * 1000)  # the tab's console draws


def test_a_tab_closed_at_any_stage_of_its_console_start_up_leaves_nothing_behind(web: Web, watch: ConsoleWatch) -> None:
    with chromium() as browser:
        # The tab closes: as its websocket opens (the console is being started), while the console
        # starts (Python loads), and the moment the console first draws.
        starting_tab(browser, web.url).close()
        watch.wait_all_gone("tab closed as its websocket opened")

        known = set(watch.seen)
        page = starting_tab(browser, web.url)
        watch.wait_for_new(known)
        page.close()
        watch.wait_all_gone("tab closed while its console started")

        page = browser.new_page()
        page.goto(web.url)
        drawn(page)
        page.close()
        watch.wait_all_gone("tab closed as soon as its console drew")

    assert len(watch.seen) >= 2  # every stage but the first surely started a console (and it ended)
    watch.wait_all_gone("after every stage")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_stopped_or_killed_web_server_takes_every_console_along(
    web: Web, watch: ConsoleWatch, how: signal.Signals
) -> None:
    """One tab drawn, one whose console is still starting: whichever way the web server ends, both go.

    (SIGINT, Ctrl+C, takes the same road as SIGTERM in ``tui-echo web``.)"""
    with chromium() as browser:
        running = browser.new_page()
        running.goto(web.url)
        drawn(running)
        known = set(watch.seen)
        starting_tab(browser, web.url)
        watch.wait_for_new(known)
        web.proc.send_signal(how)
        web.proc.wait(TIMEOUT)
        watch.wait_all_gone(f"web server ended by {how.name}")
    assert len(watch.seen) >= 2
    if how is not signal.SIGKILL:
        assert web.proc.returncode == 0


SLEEPER = (
    "from tui_echo.consoles.tab_process import end_with_web_server; end_with_web_server(); import time; time.sleep(60)"
)


def test_a_console_is_killed_with_the_web_server_that_started_it() -> None:
    """``prctl(PR_SET_PDEATHSIG)``: the console (here one that would sleep a minute) ends with its parent."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys\n"
            f"os.environ[{WEB_PID_VARIABLE!r}] = str(os.getpid())\n"
            f"child = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}])\n"
            "print(child.pid, flush=True)\n"
            "child.wait()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()  # as a web server killed with SIGKILL: no word to its consoles
    parent.wait(TIMEOUT)
    parent.stdout.close()
    wait_until_gone(child)


def test_a_console_whose_web_server_is_already_gone_ends_at_once() -> None:
    """The web server died before the console could ask to die with it: the console sees it has another parent."""
    env = os.environ | {WEB_PID_VARIABLE: str(os.getpid() + 1_000_000)}  # no such process is its parent
    done = subprocess.run([sys.executable, "-c", SLEEPER], env=env, timeout=TIMEOUT, check=False)
    assert done.returncode == -signal.SIGKILL


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not process_gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"process {pid} outlived its parent by {TIMEOUT} s")
        time.sleep(0.02)


STUCK_CONSOLE = """
import asyncio, sys
from tui_echo.cli import main
from tui_echo.monitor.attached import AttachedApp

async def never_done(self):  # a quit that never ends: a stuck app, whatever the cause
    await asyncio.sleep(3600)

AttachedApp.action_quit = never_done
sys.argv = ["tui-echo", "attach", sys.argv[1]]
sys.exit(main())
"""


def test_a_tab_s_console_that_cannot_quit_cleanly_still_answers_sigterm(socket_path: Path) -> None:
    """Run as textual-serve runs it (the web driver, over pipes); its quit hangs; SIGTERM ends it all the same."""
    env = os.environ | {"TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver", "COLUMNS": "100", "ROWS": "30"}
    console = subprocess.Popen(
        [sys.executable, "-c", STUCK_CONSOLE, str(socket_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert console.stdout is not None
    try:
        drawn = b""
        while b"kick" not in drawn.lower():  # its first picture (the footer's keys): it has mounted
            chunk = console.stdout.read1(65536)
            assert chunk, "the console ended before it drew"
            drawn += chunk
        console.send_signal(signal.SIGTERM)
        threading.Thread(target=console.stdout.read, daemon=True).start()  # keep its output flowing
        assert console.wait(TIMEOUT) == 1  # it left anyway, LEAVE_DEADLINE after the signal
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()
        for stream in (console.stdin, console.stdout):
            if stream is not None:
                stream.close()
