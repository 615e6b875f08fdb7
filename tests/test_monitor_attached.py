"""The monitor attached to a real headless server (``tui-echo attach``), driven with Pilot."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tui_echo.control.client import Connection
from tui_echo.monitor.attached import AttachedApp, ServerGone
from tui_echo.monitor.screens.confirm import ConfirmScreen
from tui_echo.monitor.models.feed import Direction
from tui_echo.monitor.remote import RemoteSource
from tui_echo.monitor.widgets.stats_bar import StatsText

from .helpers import TIMEOUT
from .monitor_helpers import SIZE, Client, Monitor, screen_text
from .process import HeadlessProcess

pytestmark = pytest.mark.tui


def run_attached(path: Path, test: Callable[[Monitor, HeadlessProcess], Awaitable[None]], *args: str) -> None:
    with contextlib.closing(HeadlessProcess("--control", str(path), *args)) as server:

        async def main() -> None:
            app = AttachedApp(RemoteSource(Connection.open(path, events=True)), feed_lines=1000, handle_signals=False)
            async with app.run_test(size=SIZE) as pilot:
                monitor = Monitor(app, pilot, server.port)
                try:
                    await test(monitor, server)
                finally:
                    for client in monitor.clients:
                        client.writer.close()

        asyncio.run(main())


@pytest.mark.parametrize(
    ("how", "what"), [(signal.SIGTERM, "stopped"), (signal.SIGKILL, "went away")], ids=["stopped", "killed"]
)
def test_the_stats_bar_says_the_server_is_gone_and_stops_counting_up(tmp_path: Path, how: int, what: str) -> None:
    async def test(monitor: Monitor, server: HeadlessProcess) -> None:
        stats = monitor.app.query_one(StatsText)  # held: the question about reattaching goes over it

        def first_line() -> str:
            return "" if stats.stats is None else stats.render().plain.splitlines()[0]

        await monitor.until(lambda: first_line().startswith("listening 127.0.0.1:"), "the stats")
        assert " up " in first_line()
        server.proc.send_signal(how)
        await monitor.until(lambda: isinstance(monitor.app.screen, ServerGone), "the offer to reattach")
        await monitor.until(lambda: first_line().startswith(f"server {what} · was listening 127.0.0.1:"), "the bar")
        assert " ran " in first_line() and " up " not in first_line()
        gone = stats.stats
        assert gone is not None
        await monitor.until(lambda: stats.stats is not gone, "another refresh", TIMEOUT)
        assert stats.stats is not None and stats.stats.uptime == gone.uptime  # it no longer counts up
        await monitor.pilot.press("q")  # quit, from the question

    run_attached(tmp_path / "control.sock", test)


def test_an_attached_console_shows_a_broadcast_as_one_line_and_a_rules_reply(tmp_path: Path) -> None:
    async def test(monitor: Monitor, server: HeadlessProcess) -> None:
        clients = [await monitor.connect() for _ in range(3)]
        await monitor.until(lambda: len(monitor.live_ids()) == 3, "three rows")
        await clients[0].say(b"hello\n")
        clients[1].writer.write(b"PING 7\n")
        assert await clients[1].receive(7) == b"PONG 7\n"
        await monitor.pilot.press("s", "ctrl+t", *"all of you", "enter")
        for client in clients:
            assert await client.receive(10) == b"all of you"
        await monitor.until(lambda: any(entry.everyone for entry in monitor.feed.entries), "the broadcast")
        await monitor.until(lambda: any(e.direction is Direction.ANSWERED for e in monitor.feed.entries), "the reply")
        entries = monitor.feed.entries
        assert [(e.client_id, e.to, e.text) for e in entries if e.direction is Direction.SENT] == [
            (None, "all (3 clients)", "all of you")
        ]
        (answered,) = [e for e in entries if e.direction is Direction.ANSWERED]
        assert (answered.client_id, answered.to, answered.text, answered.reply_text) == (
            2,
            "rule 1",
            "PING 7\\n",
            "PONG 7\\n",
        )

    run_attached(tmp_path / "control.sock", test, "--framing", "line", "--rule", r"PING (\d+) => PONG {1}\n")


def test_s_stops_the_server_after_a_question_and_the_console_says_so(tmp_path: Path) -> None:
    async def test(monitor: Monitor, server: HeadlessProcess) -> None:
        await monitor.until(lambda: "S Stop server" in screen_text(monitor.app)[-1], "the footer")
        await monitor.pilot.press("S")
        await monitor.until(lambda: isinstance(monitor.app.screen, ConfirmScreen), "the question")
        await monitor.until(lambda: monitor.app.focused is not None, "the question mounted")
        buttons = [str(button.label) for button in monitor.app.screen.query("Button")]
        assert buttons == ["Cancel (n)", "Stop server (y)"]
        await monitor.pilot.press("n")  # the safe answer: nothing happens
        await monitor.until(lambda: monitor.app.screen is monitor.app.main, "the question gone")
        assert server.proc.poll() is None
        await monitor.pilot.press("S", "y")
        assert server.proc.wait(TIMEOUT) == 0
        await monitor.until(lambda: not monitor.app.is_running, "the console to leave")

    run_attached(tmp_path / "control.sock", test)


def test_r_reattaches_to_a_server_back_on_the_same_socket(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"

    async def test(monitor: Monitor, server: HeadlessProcess) -> None:
        stats = monitor.app.query_one(StatsText)
        server.proc.kill()
        await monitor.until(lambda: isinstance(monitor.app.screen, ServerGone), "the offer to reattach")
        # The screen is current before it has mounted its buttons and given one the focus; on a busy machine
        # Textual's auto focus may give it to the first button (Quit) a moment before the screen's on_mount
        # moves it to Reattach: wait for where it settles.
        await monitor.until(
            lambda: monitor.app.focused is not None and monitor.app.focused.id == "yes", "Reattach focused"
        )
        buttons = [str(button.label) for button in monitor.app.screen.query("Button")]
        assert buttons == ["Quit (q)", "Reattach (r)"]
        with contextlib.closing(HeadlessProcess("--control", str(path))) as again:
            await monitor.pilot.press("r")
            await monitor.until(lambda: monitor.app.screen is monitor.app.main, "attached again")
            assert monitor.app.title == f"tui-echo · attached to pid {again.proc.pid}"
            port = f"listening 127.0.0.1:{again.port} "
            await monitor.until(lambda: stats.render().plain.startswith(port), "the new server's stats")
            client = Client(*await asyncio.open_connection("127.0.0.1", again.port))
            monitor.clients.append(client)
            await client.say(b"back\n")
            await monitor.until(lambda: monitor.live_ids() == [1], "its client's row")
            await monitor.pilot.press("q")  # detach: the server carries on
            await monitor.until(lambda: not monitor.app.is_running, "the console to leave")
            assert again.proc.poll() is None

    run_attached(path, test)
