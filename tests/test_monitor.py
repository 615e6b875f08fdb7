"""The monitor, driven as a user would (keys and clicks) against a real server and real clients."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from textual.app import App, ComposeResult
from textual.widgets import Checkbox

from tui_echo.monitor.gc_pace import YOUNG_OBJECTS
from tui_echo.monitor.models.feed import Direction, FeedEntry
from tui_echo.monitor.widgets.feed import Feed
from tui_echo.monitor.models.table import GONE_ROW_SECONDS

from .helpers import TIMEOUT
from .monitor_helpers import Client, Monitor, run_monitor, screen_lines
from .tls_helpers import issue_certificates

pytestmark = pytest.mark.tui


def echoed(monitor: Monitor, client_id: int) -> list[str]:
    return [e.text for e in monitor.feed.entries if e.client_id == client_id and e.direction is Direction.ECHOED]


def test_a_client_shows_a_row_and_three_messages_count_three() -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1], "a row for client #1")
        for word in (b"one", b"two", b"three"):
            await client.say(word)
        await monitor.until(lambda: len(echoed(monitor, 1)) == 3, "three feed lines")
        await monitor.until(lambda: monitor.table.rows[0].messages == 3, "a count of 3")
        assert echoed(monitor, 1) == ["one", "two", "three"]
        row_line = screen_lines(monitor.table)[1]
        assert "#1" in row_line and " 3 " in row_line and "11 B" in row_line and "kick" in row_line
        feed_text = "\n".join(screen_lines(monitor.feed))
        assert "⇄ one" in feed_text and "⇄ three" in feed_text and "connected from 127.0.0.1:" in feed_text

    run_monitor(test)


def test_the_rows_kick_control_disconnects_that_client_and_its_row_leaves() -> None:
    async def test(monitor: Monitor) -> None:
        first, second = await monitor.connect(), await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1, 2], "two rows")
        kick_x = monitor.table.kick_span()[0] + 2  # inside the control, past the table's left padding
        await monitor.pilot.click("ConnectionsTable", offset=(kick_x, 2))  # line 0 is the header
        assert await second.until_eof() == b""
        await monitor.until(lambda: monitor.live_ids() == [1], "client #2 gone from the live rows")
        row = monitor.table.row_of(2)
        assert row is not None and row.gone and row.status == "kicked"
        await monitor.until(
            lambda: monitor.table.row_of(2) is None, "the kicked row to leave", GONE_ROW_SECONDS + TIMEOUT
        )
        await first.say(b"still here")

    run_monitor(test)


def test_on_an_80_column_terminal_the_kick_control_stays_in_view_and_works() -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1], "a row")
        header, row = screen_lines(monitor.table)[:2]
        assert header.rstrip().endswith("kick") and row.rstrip().endswith("✕ kick")
        assert "out" not in header.split()  # a less needed column made room
        await monitor.pilot.click("ConnectionsTable", offset=(monitor.table.kick_span()[0] + 2, 1))
        assert await client.until_eof() == b""

    run_monitor(test, size=(80, 24))


def test_k_kicks_the_selected_client_and_K_kicks_all() -> None:
    async def test(monitor: Monitor) -> None:
        clients = [await monitor.connect() for _ in range(3)]
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "three rows")
        await monitor.pilot.press("down")
        assert monitor.table.cursor_client == 2
        await monitor.pilot.press("k")
        assert await clients[1].until_eof() == b""
        await monitor.until(lambda: monitor.live_ids() == [1, 3], "client #2 kicked")
        await clients[0].say(b"a")
        await monitor.pilot.press("K")
        assert await clients[0].until_eof() == b""
        assert await clients[2].until_eof() == b""
        await monitor.until(lambda: monitor.live_ids() == [], "every client kicked")
        assert "disconnected: kicked" in "\n".join(e.text for e in monitor.feed.entries)

    run_monitor(test)


def test_the_kick_all_button_and_the_command_palette_kick_too() -> None:
    async def test(monitor: Monitor) -> None:
        first = await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1], "a row")
        await monitor.pilot.click("#kick-all")
        assert await first.until_eof() == b""
        second = await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [2], "the second client's row")
        await monitor.palette("kick all clients", "Kick all clients")
        assert await second.until_eof() == b""

    run_monitor(test)


def test_the_cursor_stays_on_its_client_as_others_come_and_go() -> None:
    async def test(monitor: Monitor) -> None:
        clients = [await monitor.connect() for _ in range(3)]
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "three rows")
        await monitor.pilot.press("end")
        assert monitor.table.cursor_client == 3
        clients[0].writer.close()
        await monitor.until(
            lambda: monitor.table.row_of(1) is None, "client #1's row to leave", GONE_ROW_SECONDS + TIMEOUT
        )
        clients.append(await monitor.connect())
        await monitor.until(lambda: monitor.live_ids() == [2, 3, 4], "client #4's row")
        assert monitor.table.cursor_client == 3

    run_monitor(test)


def test_sorting_by_messages_puts_the_busiest_client_first() -> None:
    async def test(monitor: Monitor) -> None:
        quiet, busy = await monitor.connect(), await monitor.connect()
        await quiet.say(b"x")
        for _ in range(5):
            await busy.say(b"y")
        await monitor.until(lambda: [r.messages for r in monitor.table.rows] == [1, 5], "both counts")
        await monitor.pilot.click("ConnectionsTable", offset=(monitor.table.header_span("msgs")[0] + 1, 0))
        assert monitor.table.sort_key == "msgs"
        assert [r.client_id for r in monitor.table.rows] == [2, 1]
        assert "msgs▼" in screen_lines(monitor.table)[0]

    run_monitor(test)


def test_the_send_box_delivers_exact_bytes_to_one_client_and_to_all() -> None:
    async def test(monitor: Monitor) -> None:
        first, second = await monitor.connect(), await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1, 2], "two rows")
        await monitor.pilot.press("down", "s")
        await monitor.pilot.press(*r"hi\x00\t\\ é\r\n")
        await monitor.pilot.press("enter")
        assert await second.receive(len("hi\0\t\\ é\r\n".encode())) == "hi\0\t\\ é\r\n".encode()
        await monitor.until(
            lambda: any(e.direction is Direction.SENT and e.client_id == 2 for e in monitor.feed.entries),
            "the sent line in the feed",
        )
        monitor.app.query_one(Checkbox).value = True
        await monitor.pilot.press(*"all\\n", "enter")
        assert await first.receive(4) == b"all\n"
        assert await second.receive(4) == b"all\n"

    run_monitor(test)


def test_a_bad_escape_sends_nothing_and_keeps_the_text() -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1], "a row")
        await monitor.pilot.press("s", *r"oops\q", "enter")
        await monitor.pilot.pause(0.1)
        assert monitor.app.query_one("#send-input").value == r"oops\q"  # type: ignore[attr-defined]
        assert not [e for e in monitor.feed.entries if e.direction is Direction.SENT]
        await client.say(b"ping")  # nothing else arrived before the echo

    run_monitor(test)


def test_filter_shows_only_the_selected_clients_lines() -> None:
    async def test(monitor: Monitor) -> None:
        first, second = await monitor.connect(), await monitor.connect()
        await first.say(b"from one")
        await second.say(b"from two")
        await monitor.until(lambda: echoed(monitor, 2) == ["from two"], "both lines")
        await monitor.pilot.press("down", "f")
        shown = monitor.feed.shown_lines()
        assert any("from two" in line for line in shown) and not any("from one" in line for line in shown)
        assert "#2 only" in str(monitor.feed.border_title)
        await monitor.pilot.press("f")
        assert any("from one" in line for line in monitor.feed.shown_lines())

    run_monitor(test)


def test_hex_view_dumps_bytes_and_switches_back() -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        await client.say(b"Hello\x00\xff" + bytes(range(16)))
        await monitor.until(lambda: echoed(monitor, 1), "the line")
        await monitor.pilot.press("x")
        text = "\n".join(screen_lines(monitor.feed))
        assert "0000  48 65 6c 6c 6f 00 ff 00  01 02 03 04 05 06 07 08  |Hello...........|" in text
        assert "0010  09 0a 0b 0c 0d 0e 0f" in text
        await monitor.pilot.press("x")
        assert "Hello\\x00\\xff" in "\n".join(screen_lines(monitor.feed))

    run_monitor(test)


def test_pause_holds_the_view_while_lines_arrive_and_clear_empties_the_feed() -> None:
    async def test(monitor: Monitor) -> None:
        *clients, late = [await monitor.connect() for _ in range(4)]
        for n in range(10):  # 30 lines, more than the feed shows at once
            for client in clients:
                await client.say(b"line %d" % n)
        await monitor.until(lambda: sum(len(echoed(monitor, n)) for n in (1, 2, 3)) == 30, "30 lines")
        # It follows the newest line until paused.
        await monitor.until(lambda: "#3     ⇄ line 9" in "\n".join(screen_lines(monitor.feed)), "the newest line")
        await monitor.pilot.press("p")
        before = screen_lines(monitor.feed)
        for n in range(5):
            await late.say(b"later %d" % n)
        await monitor.until(lambda: len(echoed(monitor, 4)) == 5, "5 more lines")
        assert screen_lines(monitor.feed)[1:-1] == before[1:-1]  # the border title changes, the lines do not
        assert "PAUSED, 5 new lines" in str(monitor.feed.border_title)
        await monitor.pilot.press("p")
        await monitor.until(lambda: "later 4" in "\n".join(screen_lines(monitor.feed)), "the view back at the end")
        await monitor.pilot.press("c")
        assert monitor.feed.entries == () and monitor.feed.shown_lines() == []

    run_monitor(test)


def test_a_flooding_client_is_summarised_in_the_feed_and_counted_exactly() -> None:
    async def test(monitor: Monitor) -> None:
        flood, quiet = await monitor.connect(), await monitor.connect()
        for n in range(300):
            await flood.say(b"flood %d" % n)
        await quiet.say(b"still heard")
        await monitor.until(lambda: [r.messages for r in monitor.table.rows] == [300, 1], "exact counts")
        await monitor.until(lambda: echoed(monitor, 2) == ["still heard"], "the quiet client's line")

        def unshown() -> int:  # from notes such as "busy: 275 msgs not shown in the last second"
            notes = [e.text for e in monitor.feed.entries if e.client_id == 1 and e.text.startswith("busy: ")]
            return sum(int(note.split()[1]) for note in notes)

        await monitor.until(lambda: len(echoed(monitor, 1)) + unshown() == 300, "every line shown or noted")
        assert len(echoed(monitor, 1)) < 300
        assert "feed skipped" in screen_lines(monitor.app.query_one("#stats-text"))[3]

    run_monitor(test)


def test_escape_sequences_and_markup_from_clients_appear_literally() -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        await client.say(b"\x1b[2J\x1b]0;owned\x07\r[bold red]x[/] \x1b[31m" + b"A" * 500)
        await monitor.until(lambda: echoed(monitor, 1), "the line")
        line = next(line for line in screen_lines(monitor.feed) if "⇄" in line)
        assert r"⇄ \x1b[2J\x1b]0;owned\x07\r[bold red]x[/] \x1b[31mAAA" in line
        assert "\x1b" not in line and "\r" not in line and "\x07" not in line
        assert echoed(monitor, 1)[0].endswith("A … +335 B")  # cut at 200 bytes, with a visible mark

    run_monitor(test)


def test_quitting_closes_every_client_and_the_server() -> None:
    clients: list[Client] = []

    async def test(monitor: Monitor) -> None:
        clients.extend([await monitor.connect() for _ in range(3)])
        await monitor.until(lambda: len(monitor.live_ids()) == 3, "three rows")
        await monitor.pilot.press("q")
        for client in clients:
            assert await client.until_eof() == b""
        await monitor.until(lambda: not monitor.app.is_running, "the app to exit")
        assert monitor.app.return_code == 0

    run_monitor(test)


def test_a_refused_connection_shows_in_the_feed_and_the_stats() -> None:
    async def test(monitor: Monitor) -> None:
        admitted = await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1], "a row")
        refused = await monitor.connect()
        assert await refused.until_eof() == b""
        await monitor.until(
            lambda: any(e.text.startswith("refused: server full: 127.0.0.1:") for e in monitor.feed.entries),
            "the refusal in the feed",
        )
        await monitor.until(lambda: "1 refused" in screen_lines(monitor.app.query_one("#stats-text"))[1], "stats")
        assert monitor.live_ids() == [1]
        await admitted.say(b"unaffected")

    run_monitor(test, max_clients=1)


def test_the_feed_keeps_only_its_last_lines() -> None:
    class FeedApp(App[None]):
        def compose(self) -> ComposeResult:
            yield Feed(5)

    async def main() -> None:
        app = FeedApp()
        async with app.run_test() as pilot:
            feed = app.query_one(Feed)
            feed.add([FeedEntry.system(float(n), None, f"line {n}") for n in range(8)])
            await pilot.pause()
            assert [e.text for e in feed.entries] == [f"line {n}" for n in range(3, 8)]
            assert [line.split("• ")[1] for line in feed.shown_lines()] == [f"line {n}" for n in range(3, 8)]

    asyncio.run(main())


def test_scrolling_the_table_away_from_the_cursor_stays_put_across_refreshes() -> None:
    async def test(monitor: Monitor) -> None:
        for _ in range(60):
            await monitor.connect()
        await monitor.until(lambda: len(monitor.live_ids()) == 60, "60 rows")
        await monitor.until(lambda: monitor.table.allow_vertical_scroll, "the rows laid out, with a scrollbar")
        monitor.table.scroll_to(y=30, animate=False, immediate=True)  # what the mouse wheel does
        assert monitor.table.scroll_y == 30
        for _ in range(2):
            before = monitor.table.updates
            await monitor.until(lambda: monitor.table.updates > before, "a refresh")  # noqa: B023
        assert monitor.table.scroll_y == 30 and monitor.table.cursor_client == 1

    run_monitor(test)


def test_a_tls_server_shows_its_fingerprint_each_clients_tls_and_failed_handshakes(tmp_path) -> None:
    certificates = issue_certificates(tmp_path)
    settings = certificates.settings()

    async def test(monitor: Monitor) -> None:
        stats = monitor.app.query_one("#stats-text")
        await monitor.until(lambda: "TLS SHA-256 " + settings.fingerprint[:11] in screen_lines(stats)[0], "stats")
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", monitor.port, ssl=certificates.client_context(), server_hostname="127.0.0.1"
        )
        client = Client(reader, writer)
        monitor.clients.append(client)
        await client.say(b"secret\n")
        await monitor.until(lambda: monitor.live_ids() == [1], "a row for the TLS client")
        cipher = writer.get_extra_info("cipher")[0]
        header, row = screen_lines(monitor.table)[:2]
        assert "tls" in header.split()
        assert f"1.3 {cipher.removeprefix('TLS_')}" in row
        plain = await monitor.connect()
        plain.writer.write(b"plain text\n")
        assert await plain.until_eof() == b""
        await monitor.until(lambda: "1 TLS handshake failed" in screen_lines(stats)[1], "the failure counted")
        feed_text = "\n".join(e.text for e in monitor.feed.entries)
        assert f"certificate SHA-256 {settings.fingerprint}" in feed_text
        assert f"connected from 127.0.0.1:{writer.get_extra_info('sockname')[1]} over TLSv1.3 {cipher}" in feed_text
        assert monitor.live_ids() == [1]  # the plaintext client never became a client

    run_monitor(test, tls=settings)  # 120 columns: out and idle make room for tls


def test_a_plain_server_has_no_tls_column() -> None:
    async def test(monitor: Monitor) -> None:
        await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1], "a row")
        assert "tls" not in screen_lines(monitor.table)[0].split()

    run_monitor(test, size=(140, 40))


def test_the_palettes_screenshot_goes_to_the_current_directory_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/Downloads, as on most servers
    monkeypatch.delenv("TEXTUAL_SCREENSHOT_LOCATION", raising=False)
    monkeypatch.chdir(tmp_path)

    async def test(monitor: Monitor) -> None:
        await monitor.palette("screenshot", "Screenshot")
        await monitor.until(lambda: any("screenshot" in n for n in monitor.notifications()), "a notification")
        (saved,) = tmp_path.glob("*.svg")
        assert any(str(saved) in note for note in monitor.notifications()), monitor.notifications()
        assert "tui-echo" in saved.read_text()

    run_monitor(test)


def test_a_screenshot_goes_where_textual_screenshot_location_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXTUAL_SCREENSHOT_LOCATION", str(tmp_path))

    async def test(monitor: Monitor) -> None:
        monitor.app.deliver_screenshot("shot.svg")
        await monitor.until(lambda: any("shot.svg" in n for n in monitor.notifications()), "a notification")
        assert (tmp_path / "shot.svg").exists()

    run_monitor(test)


def test_the_palette_sorts_and_reverses_the_table() -> None:
    async def test(monitor: Monitor) -> None:
        await monitor.palette("sort connections", "Sort connections")
        assert monitor.table.sort_key == "peer" and not monitor.table.sort_reverse
        await monitor.palette("reverse sort", "Reverse sort")
        assert monitor.table.sort_key == "peer" and monitor.table.sort_reverse

    run_monitor(test)


def test_the_collectors_pace_is_the_monitors_while_it_runs_and_cpythons_after() -> None:
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    frozen: list[int] = []

    async def test(monitor: Monitor) -> None:
        during.append(gc.get_threshold())
        frozen.append(gc.get_freeze_count())
        gc.collect()  # what it keeps is frozen at the pace's next tick
        await monitor.until(lambda: gc.get_freeze_count() > frozen[0], "the survivors frozen")

    run_monitor(test)
    assert during == [(max(YOUNG_OBJECTS, before[0]), before[1], before[2])] and gc.get_threshold() == before
    assert frozen[0] > 0 and gc.get_freeze_count() == 0  # the program's own objects, frozen while it ran
