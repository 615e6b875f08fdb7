"""The fault form (F) in the monitor: set a fault on the selected client, see it, change it, clear it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Input

from tui_echo.monitor.screens.faults import FaultsScreen

from .monitor_helpers import Monitor, run_monitor, screen_lines
from .process import HeadlessProcess
from .test_monitor_attached import run_attached

pytestmark = pytest.mark.tui


def test_a_fault_set_from_the_form_holds_the_client_shows_in_the_table_and_clears() -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        await client.say(b"hello\n")
        await monitor.until(lambda: monitor.live_ids() == [1], "client #1 in the table")
        await monitor.pilot.press("F")
        await monitor.until(lambda: isinstance(monitor.app.screen, FaultsScreen), "the fault form")
        form = monitor.app.screen
        spec = form.query_one("#fault-spec", Input)
        assert spec.value == ""
        # A bad spec: the error shows in the form, and nothing is sent
        await monitor.pilot.press(*"latency=5", "enter")
        await monitor.until(lambda: "a time needs a unit" in str(form.query_one("#fault-error").render()), "the error")
        assert monitor.app.screen is form
        spec.value = "latency=300ms"
        await monitor.pilot.press("enter")
        await monitor.until(lambda: not isinstance(monitor.app.screen, FaultsScreen), "the form to close")
        await monitor.until(lambda: monitor.table.rows[0].fault == "latency=300ms", "the fault on #1's row")
        await monitor.until(
            lambda: any("faulted latency=300ms" in line for line in screen_lines(monitor.table)),
            lambda: f"the table's marker in {screen_lines(monitor.table)[:2]}",
        )
        await monitor.until(
            lambda: any("fault set: latency=300ms (by operator)" in entry.text for entry in monitor.feed.entries),
            "the feed line",
        )
        started = time.monotonic()
        await client.say(b"slow\n")
        assert time.monotonic() - started >= 0.3 - 0.005
        # The form shows the current faults, and clears them
        await monitor.pilot.press("F")
        await monitor.until(lambda: isinstance(monitor.app.screen, FaultsScreen), "the fault form again")
        assert monitor.app.screen.query_one("#fault-spec", Input).value == "latency=300ms"
        await monitor.pilot.click("#clear")
        await monitor.until(lambda: monitor.table.rows[0].fault == "", "the fault cleared from #1's row")
        await monitor.until(
            lambda: any("fault cleared (by operator)" in entry.text for entry in monitor.feed.entries), "the feed line"
        )
        await client.say(b"quick\n")
        # Esc leaves things as they are
        await monitor.pilot.press("F")
        await monitor.until(lambda: isinstance(monitor.app.screen, FaultsScreen), "the fault form once more")
        await monitor.pilot.press("escape")
        await monitor.until(lambda: not isinstance(monitor.app.screen, FaultsScreen), "the form to close")
        assert monitor.table.rows[0].fault == ""

    run_monitor(test, size=(160, 40))


def test_no_selected_client_says_so() -> None:
    async def test(monitor: Monitor) -> None:
        await monitor.pilot.press("F")
        await monitor.until(lambda: "No connected client is selected." in monitor.notifications(), "the notice")
        assert not isinstance(monitor.app.screen, FaultsScreen)

    run_monitor(test, size=(160, 40))


def test_an_attached_console_sets_and_clears_a_fault_on_a_headless_server(tmp_path: Path) -> None:
    async def test(monitor: Monitor, server: HeadlessProcess) -> None:
        client = await monitor.connect()
        await client.say(b"hello\n")
        await monitor.until(lambda: monitor.live_ids() == [1], "client #1 in the table")
        await monitor.pilot.press("F")
        await monitor.until(lambda: isinstance(monitor.app.screen, FaultsScreen), "the fault form")
        await monitor.pilot.press(*"drop=1", "enter")  # every echo dropped
        await monitor.until(lambda: monitor.table.rows[0].fault == "drop=1.0", "the fault on #1's row")
        server.wait_for(lambda line: "fault set: drop=1.0 (by console)" in line)
        client.writer.write(b"lost\n")
        await monitor.until(lambda: monitor.table.rows[0].bytes_in == 11, "the lost message counted in")
        await monitor.pilot.press("F")
        await monitor.until(lambda: isinstance(monitor.app.screen, FaultsScreen), "the fault form again")
        await monitor.pilot.click("#clear")
        server.wait_for(lambda line: "fault cleared (by console)" in line)
        await client.say(b"back\n")
        # hello and back, 11 B out of 16 B in: the lost message never went out
        await monitor.until(
            lambda: (monitor.table.rows[0].bytes_in, monitor.table.rows[0].bytes_out) == (16, 11), "11 B out"
        )

    run_attached(tmp_path / "control.sock", test)
