"""Finding one client among many, driven by keys against a real server and real clients: go to, sort, freeze,
group by address, tags, and the feed's find bar."""

from __future__ import annotations

import asyncio

import pytest

from tui_echo.monitor.models.groups import GroupRow
from tui_echo.monitor.widgets.prompts import FindBar, GoToBar

from .monitor_helpers import Client, Monitor, on_screen, run_monitor, screen_lines, screen_text

pytestmark = pytest.mark.tui


async def clients_from(monitor: Monitor, host: str, count: int) -> list[Client]:
    """``count`` clients connected from ``host`` (any 127.x.y.z address is this machine's)."""
    found = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", monitor.port, local_addr=(host, 0))
        monitor.clients.append(Client(reader, writer))
        found.append(monitor.clients[-1])
    return found


def stats_text(monitor: Monitor) -> str:
    return "\n".join(on_screen(monitor.app.query_one("#stats-text")))


def test_go_to_puts_the_cursor_on_the_client_or_says_there_is_none() -> None:
    async def test(monitor: Monitor) -> None:
        for _ in range(60):
            await monitor.connect()
        await monitor.until(lambda: len(monitor.live_ids()) == 60, "60 rows")

        await monitor.palette("go to", "Go to client")  # the go-to bar opens over the table, with the focus
        bar = monitor.app.query_one(GoToBar)
        assert bar.is_open and monitor.app.focused is bar.input and monitor.app.screen is monitor.app.main
        await monitor.pilot.press(*"#45", "enter")
        await monitor.until(lambda: monitor.table.cursor_client == 45, "the cursor on #45")
        assert any(line.split()[:1] == ["#45"] for line in on_screen(monitor.table))  # scrolled into view
        assert monitor.app.focused is bar.input  # the bar stays for the next id
        await monitor.pilot.press("ctrl+u", *"12", "enter")
        await monitor.until(lambda: monitor.table.cursor_client == 12, "the cursor on #12")
        await monitor.pilot.press("ctrl+u", *"999", "enter")
        await monitor.until(lambda: "no client #999" in " ".join(on_screen(bar)), "no client #999, in the bar")
        await monitor.pilot.press("ctrl+u", *"abc", "enter")
        await monitor.until(lambda: "not a client id" in " ".join(on_screen(bar)), "not a client id")
        assert monitor.table.cursor_client == 12
        await monitor.pilot.press("escape")
        await monitor.until(lambda: not bar.is_open and monitor.app.focused is monitor.table, "closed")

        await monitor.palette("#7", "Go to client #7")  # the palette finds a client by its id
        await monitor.until(lambda: monitor.table.cursor_client == 7, "the cursor on #7")

    run_monitor(test)


def test_the_palette_sorts_by_any_column_and_peers_sort_as_addresses() -> None:
    async def test(monitor: Monitor) -> None:
        await clients_from(monitor, "127.0.0.10", 1)
        await clients_from(monitor, "127.0.0.9", 1)
        ten, nine = monitor.clients
        await nine.say(b"x")
        await monitor.until(lambda: [row.messages for row in monitor.table.rows] == [0, 1], "two rows")
        await monitor.palette("sort by msgs", "Sort by msgs")
        await monitor.until(lambda: [row.client_id for row in monitor.table.rows] == [2, 1], "the busiest first")
        assert on_screen(monitor.table)[0].split()[:4] == ["id", "peer", "connected", "msgs▼"]
        await monitor.palette("sort by peer", "Sort by peer")  # as text, 127.0.0.10 would come first
        await monitor.until(lambda: [row.peer[0] for row in monitor.table.rows] == ["127.0.0.9", "127.0.0.10"], "9, 10")

    run_monitor(test)


def test_freezing_holds_the_rows_and_their_order_while_the_numbers_count_on() -> None:
    async def test(monitor: Monitor) -> None:
        first, second = await monitor.connect(), await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1, 2], "two rows")
        await monitor.pilot.press("Z")
        await monitor.until(lambda: "table frozen" in stats_text(monitor), "the stats bar to say so")
        third = await monitor.connect()
        second.writer.close()
        await first.say(b"counted")
        await monitor.until(lambda: monitor.table.rows[0].messages == 1, "#1's count, still counting")
        await monitor.until(lambda: "clients 2 now" in stats_text(monitor), "the server's count")
        assert [(row.client_id, row.gone) for row in monitor.table.rows] == [(1, False), (2, True)]  # no #3

        await monitor.pilot.press("Z")
        await monitor.until(lambda: monitor.live_ids() == [1, 3], "#3 in, #2 gone once thawed")
        assert "table frozen" not in stats_text(monitor)
        await third.say(b"x")

    run_monitor(test)


def test_grouping_by_address_sums_each_machines_clients_and_enter_unfolds_a_group() -> None:
    async def test(monitor: Monitor) -> None:
        busy = await clients_from(monitor, "127.0.0.2", 3)
        await clients_from(monitor, "127.0.0.3", 1)
        for client in busy:
            await client.say(b"hammer")
        await monitor.until(lambda: [row.messages for row in monitor.table.rows] == [1, 1, 1, 0], "four rows")
        await monitor.pilot.press("G")
        await monitor.until(lambda: len(monitor.table.rows) == 2, "two groups")
        groups = list(monitor.table.rows)
        assert all(isinstance(group, GroupRow) for group in groups)
        assert [(g.host, len(g.members), g.messages, g.bytes_in) for g in groups] == [  # type: ignore[union-attr]
            ("127.0.0.2", 3, 3, 18),
            ("127.0.0.3", 1, 0, 0),
        ]
        table = on_screen(monitor.table)
        assert table[1].split()[:3] == ["▸", "3×", "127.0.0.2"] and "3 clients" in table[1]
        assert "grouped by address" in stats_text(monitor)
        await busy[0].say(b"again")  # a group's sums follow its clients
        await monitor.until(lambda: groups[0].messages == 4 and groups[0].bytes_in == 23, "the sums, live")

        await monitor.pilot.press("enter")  # unfold the first group: its clients under it
        await monitor.until(lambda: len(monitor.table.rows) == 5, "the group's three clients under it")
        shown = [getattr(row, "host", row.client_id) for row in monitor.table.rows]
        assert shown == ["127.0.0.2", 1, 2, 3, "127.0.0.3"]
        monitor.app.screen.go_to(4)  # type: ignore[attr-defined]  # a client of a folded group: unfolded
        await monitor.until(lambda: monitor.table.cursor_client == 4, "the cursor on #4")

        await monitor.pilot.press("G")
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3, 4], "a row per client again")

    run_monitor(test)


def test_space_tags_rows_and_esc_clears_the_tags() -> None:
    async def test(monitor: Monitor) -> None:
        for _ in range(3):
            await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "three rows")
        await monitor.pilot.press("space", "down", "space")  # space tags and moves on: #1 and #3
        assert monitor.table.view.tagged_ids() == [1, 3]
        await monitor.until(lambda: "2 tagged" in stats_text(monitor), "the stats bar's count")
        assert [line[:1] for line in screen_lines(monitor.table)[1:4]] == ["✔", " ", "✔"]
        await monitor.pilot.press("escape")
        await monitor.until(lambda: "tagged" not in stats_text(monitor), "no tags")
        assert monitor.table.view.tags == set()

    run_monitor(test)


def test_the_find_bar_finds_text_and_hex_in_the_kept_lines_and_steps_between_hits() -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        for word in (b"alpha", b"needle one", b"beta", b"needle two\r\n"):
            await client.say(word)
        await monitor.until(lambda: len([e for e in monitor.feed.entries if e.size]) == 4, "four data lines")
        await monitor.pilot.press("ctrl+f")
        bar = monitor.app.query_one(FindBar)
        assert bar.is_open and bar.input.has_focus
        assert "Older hit" in screen_text(monitor.app)[-1]  # the footer names the find bar's keys
        await monitor.pilot.press(*"NEEDLE")
        await monitor.until(lambda: "2 lines" in " ".join(on_screen(bar)), "two lines found")
        await monitor.pilot.press("enter")  # the newest hit first, going up
        assert monitor.feed.shown_lines()[monitor.feed._hit or 0].endswith("needle two\\r\\n")  # noqa: SLF001
        await monitor.pilot.press("enter")
        assert monitor.feed.shown_lines()[monitor.feed._hit or 0].endswith("needle one")  # noqa: SLF001
        await monitor.pilot.press("enter")
        await monitor.until(lambda: "no older line has it" in " ".join(on_screen(bar)), "the end of the hits")

        await monitor.pilot.press("x")  # (typed into the bar, not the hex key)
        await monitor.pilot.press(*["backspace"] * 7, *"0d 0a")  # the hex bytes of \r\n
        await monitor.until(lambda: "not found" in " ".join(on_screen(bar)), "not in the text view")
        await monitor.pilot.press("escape")
        assert not bar.is_open
        await monitor.pilot.press("x", "ctrl+f", *"0d 0a")
        await monitor.until(lambda: "1 line" in " ".join(on_screen(bar)), "in the hex view's dump")

    run_monitor(test)
