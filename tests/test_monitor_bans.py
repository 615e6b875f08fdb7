"""Bans from the monitor: ``b`` on a client, the confirmation for loopback, the ban list (``B``) and lifting a ban."""

from __future__ import annotations

import asyncio
import re

import pytest

from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.screens.bans import BansScreen
from tui_echo.monitor.screens.confirm import ConfirmScreen
from tui_echo.server.access import ActiveBan
from tui_echo.server.commands import Ban, Unban

from .helpers import TIMEOUT
from .monitor_helpers import SIZE, Client, Monitor, run_monitor, screen_lines
from .scripted_source import T0, classroom

pytestmark = pytest.mark.tui


async def refused(monitor: Monitor) -> bool:
    """Whether a new connection from 127.0.0.1 is closed at once (True) or echoed (False)."""
    client = await monitor.connect()
    client.writer.write(b"?")
    try:
        return await asyncio.wait_for(client.reader.read(1), TIMEOUT) == b""
    except ConnectionResetError:
        return True


def test_b_on_a_loopback_client_asks_first_then_bans_and_the_list_lifts_it() -> None:
    async def test(monitor: Monitor) -> None:
        app = monitor.app
        first = await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1], "a row")
        await monitor.pilot.press("b")
        await monitor.until(lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert "127.0.0.1 is a loopback address" in str(app.screen.query_one("#question").render())
        await monitor.pilot.press("n")  # no: nothing happens
        await monitor.until(lambda: not isinstance(app.screen, ConfirmScreen), "the confirmation to close")
        await first.say(b"still here")
        assert app.server.bans() == ()

        await monitor.pilot.press("b")
        await monitor.until(lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await monitor.pilot.click("#yes")
        assert await first.until_eof() == b""
        await monitor.until(lambda: [b.address for b in app.server.bans()] == ["127.0.0.1"], "the ban")
        assert await refused(monitor)
        title = monitor.app.query_one("#table-title")
        await monitor.until(lambda: "1 banned (B lists them)" in str(title.render()), "the title to count the ban")
        await monitor.until(
            lambda: any(e.text.startswith("refused: banned: 127.0.0.1:") for e in monitor.feed.entries), "feed"
        )

        await monitor.pilot.press("B")
        await monitor.until(lambda: isinstance(app.screen, BansScreen), "the ban list")
        bans = app.screen
        assert isinstance(bans, BansScreen)
        assert bans.addresses == ["127.0.0.1"]
        listed = "\n".join(screen_lines(bans.query_one("DataTable")))
        assert "127.0.0.1" in listed and re.search(r"\b(10m00s|9m[0-5]\ds)\b", listed), listed  # a 10-minute ban
        await monitor.pilot.press("u")
        await monitor.until(lambda: app.server.bans() == (), "the ban to be lifted")
        await monitor.until(lambda: bans.addresses == [], "the list to empty")
        await monitor.pilot.press("escape")
        await monitor.until(lambda: not isinstance(app.screen, BansScreen), "the list to close")
        welcome: Client = await monitor.connect()
        await welcome.say(b"back again")

    run_monitor(test)


def test_b_on_a_remote_client_bans_at_once_and_the_list_counts_down() -> None:
    async def test() -> None:
        now = [T0]
        # Client #3 is 10.0.0.7. The second ban has ended (the server forgets it at its next check).
        source = classroom(bans=(ActiveBan("192.0.2.9", T0 + 125), ActiveBan("10.9.9.9", T0 - 1)))
        app = MonitorApp(source, clock=lambda: now[0], handle_signals=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("down", "down")
            await pilot.press("b")
            assert source.commands == [Ban(3)]
            assert not isinstance(app.screen, ConfirmScreen)
            await pilot.press("B")
            await pilot.pause()
            bans = app.screen
            assert isinstance(bans, BansScreen)
            assert bans.addresses == ["192.0.2.9"]
            assert "2m05s" in "\n".join(screen_lines(bans.query_one("DataTable")))
            now[0] = T0 + 126
            bans.refresh_bans()
            await pilot.pause()
            assert bans.addresses == []
            await pilot.press("u")  # nothing selected: nothing sent
            assert source.commands == [Ban(3)]
            now[0] = T0
            bans.refresh_bans()
            await pilot.press("delete")
            assert source.commands == [Ban(3), Unban("192.0.2.9")]

    asyncio.run(test())
