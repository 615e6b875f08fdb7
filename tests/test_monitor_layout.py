"""What a small (or a wide) terminal shows, and where the keyboard goes, with a real server and real clients."""

from __future__ import annotations

import re

import pytest
from textual.widgets import Input

from .monitor_helpers import Monitor, on_screen, run_monitor, screen_text

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
        assert re.search(r"msg/s · 1 min · peak [0-9.]+$", screen[0].rstrip()), screen[0]

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
        await monitor.pilot.press("s", "ctrl+t")
        footer = screen_text(monitor.app)[-1]
        assert "to all" in screen_text(monitor.app)[-2]
        assert "⏎ Send" in footer and "esc Back" in footer  # the letter keys type while the box has focus
        await monitor.pilot.press("escape")
        assert monitor.app.focused is not None and not isinstance(monitor.app.focused, Input)

    run_monitor(test)
