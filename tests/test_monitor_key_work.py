"""What a key costs the monitor, counted (never timed): issue 18's go-to and filter at 10,000 clients.

``bench_monitor.py --clients 10000`` times these keys in a real terminal with 1,000 clients echoing; the
profile behind its figures (README, Performance) found the time in work that these tests count, so that
the work coming back fails here:
  * trio's next batch of echoes waits while Textual has work ready (a key crossing its widgets);
  * the footer is not built again when its keys have not changed (the palette's go-to rebuilt it twice);
  * a label whose text keeps its width asks for no layout of the whole screen (the cursor's "to #12");
  * the table formats only the rows in view, and a filter keypress looks at each client once;
  * a filter keypress is one frame (the character and the rows it leaves), and lays nothing out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Label

from tui_echo.client_filter import ClientFilter
from tui_echo.monitor.app import PALETTE_CLOSE_SECONDS, MonitorApp
from tui_echo.monitor.guest import HOST_FIRST_SECONDS, run_when_host_idle
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.send_box import SendBox
from tui_echo.monitor.widgets.steady import SteadyFooter, SteadyLabel
from tui_echo.server.clients import ClientState
from tui_echo.server.config import ServerConfig
from tui_echo.server.events import ServerListening, ServerTotals

from .monitor_helpers import Monitor, run_monitor
from .scripted_source import ADDRESS, T0, ScriptedSource

pytestmark = pytest.mark.tui

CLIENTS = 10_000


def test_trios_next_batch_waits_until_the_host_loop_has_nothing_ready() -> None:
    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        ran: list[object] = []

        def hop(n: int) -> None:  # a message going from widget to widget: one loop turn each
            ran.append(n)
            if n < 50:
                loop.call_soon(hop, n + 1)

        run_when_host_idle(loop, lambda: ran.append("trio"))
        assert ran == []  # never at once: trio asks from inside its own batch
        loop.call_soon(hop, 1)
        while "trio" not in ran:
            await asyncio.sleep(0.01)
        return ran

    ran = asyncio.run(main())
    assert ran == [*range(1, 51), "trio"]  # before: trio's batch came after the host's fifth turn


def test_a_host_that_always_has_work_still_lets_trio_run() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        turns = 0
        trio_ran = asyncio.Event()

        def busy() -> None:  # never idle
            nonlocal turns
            turns += 1
            if not trio_ran.is_set():
                loop.call_soon(busy)

        loop.call_soon(busy)
        run_when_host_idle(loop, trio_ran.set)
        await asyncio.wait_for(trio_ran.wait(), timeout=30)
        return turns

    assert asyncio.run(main()) > 1  # it waited for the host, then ran anyway (after HOST_FIRST_SECONDS)
    assert HOST_FIRST_SECONDS <= 0.1  # an echo never waits longer than that for the monitor


class _LabelApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SteadyLabel("to —", id="label")


def test_a_steady_label_asks_for_a_layout_only_when_its_width_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    layouts: list[str] = []
    update = Label.update

    def counted(self: Label, content: str = "", *, layout: bool = True) -> None:
        if layout:
            layouts.append(content)
        update(self, content, layout=layout)

    async def main() -> None:
        app = _LabelApp()
        async with app.run_test() as pilot:
            label = app.query_one(SteadyLabel)
            monkeypatch.setattr(Label, "update", counted)
            for text in ("to #1", "to #2", "to #9", "to #10", "to #11", "to #11"):
                label.show(text)
                await pilot.pause()
            assert str(label.render()) == "to #11"

    asyncio.run(main())
    assert layouts == ["to #1", "to #10"]  # the first (wider than "to —") and the one a character wider


def test_a_go_to_from_the_palette_and_cursor_keys_build_the_footer_no_more() -> None:
    async def test(monitor: Monitor) -> None:
        for _ in range(40):
            await monitor.connect()
        await monitor.until(lambda: len(monitor.live_ids()) == 40, "40 rows")
        footer = monitor.app.screen.query_one(SteadyFooter)
        await monitor.until(lambda: footer.rebuilds >= 1, "the footer")
        built = footer.rebuilds
        send_box = monitor.app.screen.query_one(SendBox)

        await monitor.palette("#33", "Go to client #33")
        await monitor.until(lambda: send_box.target == 33, "the send box to #33")
        await monitor.pilot.press("down", "down", "up")
        await monitor.until(lambda: send_box.target == 34, "the send box to #34")
        await monitor.pilot.pause()
        assert footer.rebuilds == built  # before: two rebuilds for a go-to, each a layout of the screen

        await monitor.pilot.press("slash")  # the filter prompt's keys are other keys: the footer shows them
        await monitor.until(lambda: footer.rebuilds == built + 1, "the footer with the prompt's keys")

    run_monitor(test)


def ten_thousand() -> ScriptedSource:
    clients = [
        ClientState(
            client_id=n,
            peer=(f"10.0.{n % 4}.{n % 250 + 1}", 1024 + n * 7 % 60000),
            connected_at=T0,
            last_activity=T0,
        )
        for n in range(1, CLIENTS + 1)
    ]
    listening = ServerListening(addresses=(ADDRESS,), at=T0, config=ServerConfig(port=0))
    return ScriptedSource(clients, [listening], ServerTotals(CLIENTS, CLIENTS, CLIENTS, 0, 0, 0, 0, 0))


def run_among_ten_thousand(test: Callable[[MonitorApp, Pilot[None], ConnectionsTable], Awaitable[None]]) -> None:
    """Run ``test`` on the monitor (120x40) once its table shows the 10,000 scripted clients."""

    async def main() -> None:
        app = MonitorApp(ten_thousand(), clock=lambda: T0 + 10, handle_signals=False)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.screen.query_one(ConnectionsTable)
            while len(table.rows) < CLIENTS:
                await pilot.pause(0.05)
            await test(app, pilot, table)

    asyncio.run(main())


def counting(monkeypatch: pytest.MonkeyPatch, cls: type, method: str) -> list[int]:
    """Count the calls of ``cls.method`` from now on."""
    calls = [0]
    original: Callable[..., object] = getattr(cls, method)

    def counted(self: object, *args: object) -> object:
        calls[0] += 1
        return original(self, *args)

    monkeypatch.setattr(cls, method, counted)
    return calls


def test_among_10000_rows_a_go_to_draws_the_rows_in_view_and_a_filter_key_reads_each_client_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def test(app: MonitorApp, pilot: Pilot[None], table: ConnectionsTable) -> None:
        await pilot.pause()
        lines = counting(monkeypatch, ConnectionsTable, "render_line")
        app.screen.go_to(9_876)  # type: ignore[attr-defined]
        # in the same step, so drawn in the same frame as the row (a message came a frame later)
        assert app.screen.query_one(SendBox).target == 9_876
        await pilot.pause()
        assert table.cursor_client == 9_876
        assert 0 < lines[0] <= 2 * table.size.height  # a screenful (perhaps twice), not 10,000

        matches = counting(monkeypatch, ClientFilter, "__call__")
        await pilot.press("slash", "7")
        while "filter: 7" not in str(app.screen.query_one("#stats-text").render()):
            await pilot.pause(0.05)
        assert matches[0] == CLIENTS  # each client once: the filter is applied once per keypress

    run_among_ten_thousand(test)


def test_the_palette_closing_holds_the_screen_one_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    held: list[float] = []
    monkeypatch.setattr(App, "delay_update", lambda self, delay=0.05: held.append(delay))
    app = MonitorApp(ten_thousand(), handle_signals=False)
    app.delay_update()  # what the command palette asks for as it closes (Textual's default: 50 ms)
    assert held == [PALETTE_CLOSE_SECONDS] and PALETTE_CLOSE_SECONDS <= 1 / 60


def test_among_10000_rows_a_filter_keypress_paints_the_table_once_and_lays_nothing_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: the typed character was painted first (Input.Changed and the bar's message took three hops to
    the screen), and the input's width, the count beside it and the table's height each asked for a layout of
    the whole screen (two to three per key, the larger part of the key's work)."""

    async def test(app: MonitorApp, pilot: Pilot[None], table: ConnectionsTable) -> None:
        await pilot.press("slash")
        await pilot.pause(0.2)
        stats = app.screen.query_one("#stats-text")
        layouts: list[object] = []
        app.screen.screen_layout_refresh_signal.subscribe(table, layouts.append)
        lines = counting(monkeypatch, ConnectionsTable, "render_line")
        for key, filtered in [("7", True), ("backspace", False), ("7", True), ("1", True), ("backspace", True)]:
            painted, shown = lines[0], len(table.rows)
            await pilot.press(key)
            while ("filter: 7" in str(stats.render())) != filtered or len(table.rows) == shown:
                await pilot.pause(0.02)
            await pilot.pause(0.2)
            assert lines[0] - painted <= table.size.height, key  # the rows in view, once
            assert table.vertical_scrollbar.window_virtual_size == len(table.rows) + 1  # its thumb follows
        assert layouts == []

    run_among_ten_thousand(test)
