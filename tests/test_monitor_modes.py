"""The monitor speaks the mode: driven with keys (Pilot) against a real server in chat mode and real clients."""

from __future__ import annotations

import asyncio
import re

import pytest

from tui_echo.monitor.widgets.stats_bar import StatsText
from tui_echo.server.config import Mode

from .helpers import TIMEOUT
from .monitor_helpers import Client, Monitor, on_screen, run_monitor, screen_lines

pytestmark = pytest.mark.tui


async def line_of(client: Client) -> bytes:
    return await asyncio.wait_for(client.reader.readline(), TIMEOUT)


def test_a_chat_server_says_so_and_its_feed_shows_who_said_what_to_whom() -> None:
    async def test(monitor: Monitor) -> None:
        stats = monitor.app.query_one(StatsText)
        await monitor.until(lambda: "chat mode" in "\n".join(screen_lines(stats)), "the stats bar to name the mode")
        assert "dropped" in on_screen(monitor.table)[0]  # the column chat and broker servers have
        one, two, three = [await monitor.connect() for _ in range(3)]
        await monitor.until(lambda: len(monitor.live_ids()) == 3, "three rows")
        assert (await line_of(one)).startswith(b"* #2 joined from 127.0.0.1:")
        assert (await line_of(one)).startswith(b"* #3 joined from 127.0.0.1:")
        assert (await line_of(two)).startswith(b"* #3 joined from 127.0.0.1:")
        one.writer.write(b"hello class\n")
        assert await line_of(two) == b"<#1> hello class\n"
        assert await line_of(three) == b"<#1> hello class\n"
        await monitor.until(
            lambda: any(re.search(r"#1 +⇶ all  hello class\\n", line) for line in screen_lines(monitor.feed)),
            "the chat line in the feed",
        )
        # The send box speaks as the operator: privately to the selected client, or to all.
        await monitor.pilot.press("s", *"quiet please", "enter")
        selected = monitor.table.cursor_client
        reader = {1: one, 2: two, 3: three}[selected]
        assert await line_of(reader) == b"<operator> (private) quiet please\n"
        assert f"<operator> to #{selected}" in "".join(on_screen(monitor.app.query_one("#send-target")))

    run_monitor(test, mode=Mode.CHAT)


def test_an_echo_server_names_its_mode_and_has_no_dropped_column() -> None:
    async def test(monitor: Monitor) -> None:
        stats = monitor.app.query_one(StatsText)
        await monitor.until(lambda: "echo mode" in "\n".join(screen_lines(stats)), "the stats bar to name the mode")
        assert "dropped" not in on_screen(monitor.table)[0]

    run_monitor(test)
