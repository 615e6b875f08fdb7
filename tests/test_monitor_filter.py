"""The table's filter, ``/``: driven by keys against a real server and real clients from several addresses."""

from __future__ import annotations

import pytest

from tui_echo.monitor.screens.help import HelpScreen
from tui_echo.monitor.widgets.prompts import FilterBar

from .monitor_helpers import Monitor, on_screen, run_monitor, screen_text
from .test_monitor_find import clients_from, stats_text

pytestmark = pytest.mark.tui


def test_slash_filters_the_table_live_enter_keeps_it_and_a_new_client_that_matches_appears() -> None:
    async def test(monitor: Monitor) -> None:
        await clients_from(monitor, "127.0.0.7", 2)
        await clients_from(monitor, "127.0.0.70", 1)
        await clients_from(monitor, "127.0.0.8", 1)
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3, 4], "four rows")
        await monitor.pilot.press("slash")
        bar = monitor.app.query_one(FilterBar)
        assert bar.is_open and bar.input.has_focus
        footer = screen_text(monitor.app)[-1]
        assert "Keep filter" in footer and "Clear filter" in footer  # the prompt's keys, while it is open

        await monitor.pilot.press(*"127.0.0.7")  # the address exactly: not 127.0.0.70
        await monitor.until(lambda: monitor.live_ids() == [1, 2], "the two from 127.0.0.7, as typed")
        await monitor.until(lambda: "showing 2 of 4 · filter: 127.0.0.7" in stats_text(monitor), "the stats bar")
        assert "2 of 4" in " ".join(on_screen(bar))
        assert monitor.feed._find == ""  # noqa: SLF001  # the feed's find bar has its own text
        await monitor.pilot.press("enter")
        assert not bar.is_open and monitor.table.has_focus
        assert monitor.live_ids() == [1, 2]  # kept

        await clients_from(monitor, "127.0.0.8", 1)  # a watch: a newcomer that matches shows, one that does not not
        await clients_from(monitor, "127.0.0.7", 1)
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 6], "the newcomer from 127.0.0.7")
        await monitor.until(lambda: "showing 3 of 6" in stats_text(monitor), "the new count")
        monitor.clients[0].writer.close()  # one leaves: its row goes (after its gone row's time), the filter holds
        await monitor.until(lambda: monitor.live_ids() == [2, 6], "#1 gone")

        await monitor.pilot.press("ctrl+f", *"connected", "escape")  # the find bar's text does not filter
        assert monitor.live_ids() == [2, 6]
        await monitor.pilot.press("slash", "escape")  # Esc in the prompt clears the filter
        assert not bar.is_open and bar.text == ""
        await monitor.until(lambda: monitor.live_ids() == [2, 3, 4, 5, 6], "every row again")
        await monitor.until(lambda: "filter" not in stats_text(monitor), "no filter in the stats bar")

    run_monitor(test)


def test_a_filter_by_port_id_alternatives_and_inversion_and_a_bad_one_says_why() -> None:
    async def test(monitor: Monitor) -> None:
        clients = await clients_from(monitor, "127.0.0.9", 3)
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "three rows")
        port = clients[1].writer.get_extra_info("sockname")[1]
        bar = monitor.app.query_one(FilterBar)
        await monitor.pilot.press("slash", *f":{port}")
        await monitor.until(lambda: monitor.live_ids() == [2], "the client with that port")
        await monitor.pilot.press(*["backspace"] * 6, *"#1|#3")
        await monitor.until(lambda: monitor.live_ids() == [1, 3], "either id")
        await monitor.pilot.press("home", "!")
        await monitor.until(lambda: monitor.live_ids() == [2], "all but those")
        await monitor.pilot.press("end", *"|#x")  # not a filter: the table keeps the last one, the note says why
        await monitor.until(lambda: "# is followed by a client id" in " ".join(on_screen(bar)), "what is wrong")
        assert monitor.live_ids() == [2]
        await monitor.pilot.press("escape")
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "every row again")

    run_monitor(test)


def test_go_to_a_client_the_filter_hides_says_so() -> None:
    async def test(monitor: Monitor) -> None:
        for _ in range(3):
            await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "three rows")
        await monitor.pilot.press("slash", *"#2", "enter")
        await monitor.until(lambda: monitor.live_ids() == [2], "only #2")
        monitor.app.screen.go_to(3)  # type: ignore[attr-defined]
        await monitor.until(lambda: "#3 is not shown: the table's filter hides it." in monitor.notifications(), "why")

    run_monitor(test)


def test_the_help_lists_every_new_key_once_with_the_prompts_own_keys() -> None:
    async def test(monitor: Monitor) -> None:
        await monitor.pilot.press("question_mark")
        help_screen = monitor.app.screen
        assert isinstance(help_screen, HelpScreen)
        groups = {title: [keys for keys, _ in lines] for title, lines in help_screen.sections}
        assert {"/", "Z", "G", "^f", "esc", "f", "p", "K"} <= set(groups["Keys"])
        assert {"space", "o", "O", "⏎"} <= set(groups["Connections table (when it has the focus)"])
        assert set(groups["Filter bar (when it has the focus)"]) == {"⏎", "esc"}  # not the text box's own keys
        assert {"⏎", "esc", "↓ shift+⏎"} <= set(groups["Find bar (when it has the focus)"])
        for title, shown in groups.items():
            assert len(shown) == len(set(shown)), (title, shown)  # each key once in its group

    run_monitor(test)


def test_the_palette_finds_a_client_by_port_and_the_feed_follows_the_filtered_clients() -> None:
    async def test(monitor: Monitor) -> None:
        clients = await clients_from(monitor, "127.0.0.5", 3)
        for number, client in enumerate(clients, 1):
            await client.say(f"line from {number}".encode())
        await monitor.until(lambda: len([e for e in monitor.feed.entries if e.size]) == 3, "three data lines")
        port = clients[2].writer.get_extra_info("sockname")[1]
        await monitor.palette("port", "Find a client by its port")
        bar = monitor.app.query_one(FilterBar)
        assert bar.is_open and bar.text == ":"
        await monitor.pilot.press(*str(port), "enter")
        await monitor.until(lambda: monitor.live_ids() == [3], "the client with that port")

        await monitor.palette("feed filtered", "Feed: the filtered clients")
        await monitor.until(lambda: "1 filtered client only" in (monitor.feed.border_title or ""), "the feed's title")
        data = [line for line in monitor.feed.shown_lines() if "line from" in line]
        assert len(data) == 1 and data[0].endswith("line from 3")
        await monitor.pilot.press("f")  # f: the whole feed again
        await monitor.until(lambda: len([x for x in monitor.feed.shown_lines() if "line from" in x]) == 3, "all")

        await monitor.palette("filter table", "Filter table")
        assert bar.is_open
        await monitor.pilot.press("escape")
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "every row again")

    run_monitor(test)
