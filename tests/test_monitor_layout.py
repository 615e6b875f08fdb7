"""What a small (or a wide) terminal shows, and where the keyboard goes, with a real server and real clients."""

from __future__ import annotations

import re

import pytest
from textual.widgets import Input

from tui_echo.client_keys import ClientKeys
from tui_echo.monitor.models.table import TableModel
from tui_echo.monitor.models.table_view import TableView
from tui_echo.monitor.widgets.table_columns import COLUMNS
from tui_echo.monitor.widgets.feed import Feed

from .monitor_helpers import Monitor, on_screen, run_monitor, screen_lines, screen_text
from .tls_helpers import issue_certificates

pytestmark = pytest.mark.tui


async def five_clients(monitor: Monitor) -> None:
    for _ in range(5):
        await (await monitor.connect()).say(b"hi")
    await monitor.until(lambda: [row.messages for row in monitor.table.rows] == [1] * 5, "five rows with a message")
    await monitor.pilot.pause(0.1)


def test_at_50x14_three_clients_their_kick_controls_the_stats_and_quit_show() -> None:
    async def test(monitor: Monitor) -> None:
        await five_clients(monitor)
        table = on_screen(monitor.table)
        assert table[0].split() == ["id▲", "peer", "msgs", "kick"]
        assert [line.split()[0] for line in table[1:4]] == ["#1", "#2", "#3"]
        assert all(line.rstrip(" ▁▂▃▄▅▆▇█").endswith("✕ kick") for line in table[1:4])
        screen = screen_text(monitor.app)
        assert screen[2].startswith(" messages 5 ") and screen[3].startswith(" rate ")
        assert " q Stop & quit " in screen[-1]

    run_monitor(test, size=(50, 14))


def test_at_80x24_the_footer_keeps_quit_and_the_history_label_is_whole() -> None:
    async def test(monitor: Monitor) -> None:
        await five_clients(monitor)
        await monitor.until(lambda: "peak" in screen_text(monitor.app)[0], "a second of history")
        screen = screen_text(monitor.app)
        assert " k Kick " in screen[-1] and " q Stop & quit " in screen[-1]
        assert re.search(r"log msg/s · 1 min · peak [0-9.]+$", screen[0].rstrip()), screen[0]

    run_monitor(test, size=(80, 24))


def test_at_200_columns_the_kick_controls_sit_under_kick_all() -> None:
    async def test(monitor: Monitor) -> None:
        await five_clients(monitor)
        bar, _, first_row = screen_text(monitor.app)[4:7]
        assert abs(len(bar.rstrip()) - len(first_row.rstrip())) <= 3  # "✕ Kick all" ends where "✕ kick" does

    run_monitor(test, size=(200, 50))


def test_tab_skips_the_all_tick_box_and_ctrl_t_ticks_it() -> None:
    async def test(monitor: Monitor) -> None:
        await monitor.pilot.press("tab", "tab")  # table, feed, then the text to send
        assert isinstance(monitor.app.focused, Input)
        await monitor.pilot.press("tab")
        assert monitor.app.focused is monitor.table
        assert "▐ ▌ all" in screen_text(monitor.app)[-2]  # unticked: no X
        await monitor.pilot.press("s", "ctrl+t")
        footer = screen_text(monitor.app)[-1]
        assert "to all" in screen_text(monitor.app)[-2] and "▐X▌ all" in screen_text(monitor.app)[-2]
        assert "⏎ Send" in footer and "esc Back" in footer  # the letter keys type while the box has focus
        await monitor.pilot.press("escape")
        assert monitor.app.focused is not None and not isinstance(monitor.app.focused, Input)

    run_monitor(test)


def test_every_column_title_shows_whole_with_its_sort_mark_both_ways() -> None:
    async def test(monitor: Monitor) -> None:
        await five_clients(monitor)
        table = monitor.table
        table.show_tls = table.show_dropped = table.show_labels = True  # every column there is
        # The server and worker columns: a console of several servers, one of them with workers.
        table.view = TableView(TableModel(ClientKeys(("7001", "7002"), (2, 1))))
        for column in COLUMNS:
            for _ in range(2):  # biggest first, then the other way (or the reverse for text columns)
                table.sort_by(column.key)
                await monitor.pilot.pause()
                mark = "▼" if table.sort_reverse else "▲"
                assert f"{column.title}{mark}" in screen_lines(table)[0], (column.key, screen_lines(table)[0])

    run_monitor(test, size=(200, 50))


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_a_system_line_wider_than_the_feed_wraps_under_itself_so_the_tls_fingerprint_shows_whole(
    tmp_path, size: tuple[int, int]
) -> None:
    settings = issue_certificates(tmp_path).settings()

    async def test(monitor: Monitor) -> None:
        feed = monitor.app.query_one(Feed)
        await monitor.until(lambda: "with TLS" in "".join(screen_lines(feed)), "the listening line")
        lines = [line.rstrip() for line in screen_lines(feed)]
        first = next(n for n, line in enumerate(lines) if "listening on" in line)
        text_column = lines[first].index("listening on")
        rest = [line for line in lines[first + 1 :] if line.strip()]
        assert all(line[:text_column].strip() == "" for line in rest)  # under the text, past time and label
        assert not any(line.endswith("…") for line in lines)
        said = "".join("".join(lines[first : first + 1 + len(rest)]).split())  # the rows, without their spaces
        assert f"certificateSHA-256{settings.fingerprint}" in said
        if size[0] >= 120:  # wide enough for the fingerprint on a line of its own
            assert any(line.strip() == settings.fingerprint for line in lines)
        await monitor.pilot.resize_terminal(size[0] + 20, size[1])  # laid out again for the new width
        await monitor.until(lambda: "with TLS" in "".join(screen_lines(feed)), "the line after the resize")

    run_monitor(test, size=size, tls=settings)
