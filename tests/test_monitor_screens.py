"""A client's own screen, saving the feed, and help: driven with keys against a real server and real clients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.command import CommandPalette
from textual.widgets import OptionList

from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.models.feed import Direction
from tui_echo.monitor.screens.client_detail import ClientScreen
from tui_echo.monitor.screens.help import HelpScreen
from tui_echo.monitor.screens.main import MainScreen
from tui_echo.monitor.widgets.connections import ConnectionsTable
from tui_echo.monitor.widgets.feed import Feed
from tui_echo.monitor.widgets.send_box import SendBox
from tui_echo.server.rules import compile_rule

from .monitor_helpers import Monitor, run_monitor, screen_lines

pytestmark = pytest.mark.tui

HOSTILE = b"\x1b[2J\x1b]0;owned\x07\r[bold red]x[/] \xff\n"
HOSTILE_ESCAPED = r"\x1b[2J\x1b]0;owned\x07\r[bold red]x[/] \xff\n"


def client_screen(monitor: Monitor) -> ClientScreen:
    screen = monitor.app.screen
    assert isinstance(screen, ClientScreen), f"the screen on top is {screen!r}"
    return screen


def head(monitor: Monitor) -> str:
    return "\n".join(screen_lines(client_screen(monitor).query_one("#client-head")))


def history(monitor: Monitor) -> list[str]:
    return client_screen(monitor).query_one(Feed).shown_lines()


async def open_client(monitor: Monitor, client_id: int) -> ClientScreen:
    await monitor.until(lambda: monitor.table.row_of(client_id) is not None, f"a row for #{client_id}")
    monitor.table.move_cursor_to(next(i for i, row in enumerate(monitor.table.rows) if row.client_id == client_id))
    await monitor.pilot.press("enter")
    await monitor.until(lambda: isinstance(monitor.app.screen, ClientScreen), "the client's screen")
    return client_screen(monitor)


def notices(monitor: Monitor) -> list[str]:
    return [f"{n.title}: {n.message}" for n in monitor.app._notifications]


async def save(monitor: Monitor, *keys: str) -> list[str]:
    """Press the save keys and wait for each file to be written (in a thread): the new notices."""
    before = len(notices(monitor))
    await monitor.pilot.press(*keys)
    await monitor.until(lambda: len(notices(monitor)) == before + len(keys), "the save notices")
    return notices(monitor)[before:]


# ---- the client's own screen ------------------------------------------------


def test_enter_opens_the_clients_own_screen_with_its_history_and_exact_counts() -> None:
    async def test(monitor: Monitor) -> None:
        first, second = await monitor.connect(), await monitor.connect()
        await first.say(b"not mine")
        for word in (b"one", b"two", b"three"):
            await second.say(word)
        await monitor.until(lambda: [r.messages for r in monitor.table.rows] == [1, 3], "both counts")
        screen = await open_client(monitor, 2)
        assert screen.client_id == 2
        lines = history(monitor)
        assert [line.split("⇄ ")[1] for line in lines if "⇄" in line] == ["one", "two", "three"]
        assert "connected from 127.0.0.1:" in lines[0] and not any("not mine" in line for line in lines)
        assert "#2  127.0.0.1:" in head(monitor) and "messages 3 · in 11 B · out 11 B" in head(monitor)
        # It keeps up: new lines and exact counts, from the same server the app reads.
        await second.say(b"four" * 100)
        await first.say(b"still not mine")
        await monitor.until(lambda: "messages 4 · in 411 B · out 411 B" in head(monitor), "the new exact count")
        await monitor.until(lambda: any("fourfour" in line for line in history(monitor)), "the new line")
        assert not any("still not mine" in line for line in history(monitor))
        await monitor.pilot.press("x")
        assert any("0000  66 6f 75 72" in line for line in history(monitor))  # its hex view
        await monitor.pilot.press("escape")
        assert monitor.app.screen is monitor.app.screen_stack[0]
        assert monitor.feed.hex_view is False  # the main feed kept its own view

    run_monitor(test)


def test_a_clients_screen_has_its_own_lines_after_other_clients_flooded_them_out_of_the_feed() -> None:
    async def test(monitor: Monitor) -> None:
        quiet = await monitor.connect()
        for n in range(3):
            await quiet.say(b"quiet %d" % n)
        quiet.writer.write(b"\x02AB\x03")
        assert await quiet.receive(4) == b"\x06AB\x03"
        await monitor.pilot.press("s", "ctrl+t", *"to everyone", "enter", "escape")
        assert await quiet.receive(11) == b"to everyone"
        loud = [await monitor.connect() for _ in range(8)]
        for n in range(6):
            for client in loud:
                await client.say(b"flood %d" % n)
        await monitor.until(lambda: echoed_by(monitor, 9)[-1:] == ["flood 5"], "the last loud line")
        assert not [entry for entry in monitor.feed.entries if entry.client_id == 1]  # pushed out of the feed
        await open_client(monitor, 1)
        lines = history(monitor)
        assert "connected from 127.0.0.1:" in lines[0]
        assert [line.split("⇄ ")[1] for line in lines if "⇄" in line] == ["quiet 0", "quiet 1", "quiet 2"]
        # A rule's answer shows the request and the reply, and the broadcast it got shows too, once.
        assert [line.split("↩ ")[1] for line in lines if "↩" in line] == ["rule 1  \\x02AB\\x03  reply \\x06AB\\x03"]
        assert [line.split("→ ")[1] for line in lines if "→" in line] == ["all (1 client)  to everyone"]

    frames = compile_rule(1, "--rule 1", r"\x02(..)\x03", r"\x06{1}\x03")
    run_monitor(test, feed_lines=40, rules=(frames,))


def echoed_by(monitor: Monitor, client_id: int) -> list[str]:
    return [e.text for e in monitor.feed.entries if e.client_id == client_id and e.direction is Direction.ECHOED]


def test_send_from_a_clients_screen_reaches_that_client_alone() -> None:
    async def test(monitor: Monitor) -> None:
        first, second = await monitor.connect(), await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1, 2], "two rows")
        await open_client(monitor, 2)
        await monitor.pilot.press("s", *r"just you\x00\n", "enter")
        assert await second.receive(10) == b"just you\x00\n"
        # Had anything else been sent, to #1 or again to #2, it would come before these echoes.
        await first.say(b"ping")
        await second.say(b"ping")
        await monitor.until(lambda: any("→ just you\\x00\\n" in line for line in history(monitor)), "the sent line")
        assert client_screen(monitor).query_one("#send-all").display is False  # no "all" here

    run_monitor(test)


def test_kick_from_a_clients_screen_closes_that_client_and_the_screen_says_why() -> None:
    async def test(monitor: Monitor) -> None:
        first, second = await monitor.connect(), await monitor.connect()
        await second.say(b"before")
        await open_client(monitor, 2)
        await monitor.pilot.press("K")  # the main screen's "kick all" is off here
        await monitor.pilot.press("k")
        assert await second.until_eof() == b""
        await monitor.until(lambda: client_screen(monitor).gone, "the screen to see the client go")
        banner = "\n".join(screen_lines(client_screen(monitor).query_one("#client-gone")))
        assert "#2 disconnected: kicked" in banner
        assert "kicked" in head(monitor) and "messages 1" in head(monitor)
        assert any("⇄ before" in line for line in history(monitor))  # still readable
        assert any("disconnected: kicked" in line for line in history(monitor))
        assert client_screen(monitor).query_one(SendBox).disabled
        await first.say(b"untouched")
        await monitor.pilot.press("escape")
        assert monitor.app.screen is monitor.app.screen_stack[0] and monitor.live_ids() == [1]

    run_monitor(test)


def test_a_client_that_leaves_while_its_screen_is_open_shows_the_reason() -> None:
    async def test(monitor: Monitor) -> None:
        client = await monitor.connect()
        await client.say(b"bye soon")
        await open_client(monitor, 1)
        client.writer.close()
        await monitor.until(lambda: client_screen(monitor).gone, "the screen to see the client go")
        await monitor.until(
            lambda: (
                "#1 disconnected: closed by peer"
                in "\n".join(screen_lines(client_screen(monitor).query_one("#client-gone")))
            ),
            "the reason on screen",
        )
        # Long after its row has left the table, the screen still shows it.
        await monitor.until(lambda: monitor.table.row_of(1) is None, "the row to leave the table", 6)
        await monitor.pilot.pause(0.5)  # a few refreshes with no row at all
        assert "closed by peer" in head(monitor) and "messages 1 · in 8 B" in head(monitor)
        assert any("⇄ bye soon" in line for line in history(monitor))

    run_monitor(test)


# ---- saving ---------------------------------------------------------------


def test_w_saves_the_feed_as_text_and_W_as_json_lines_with_hostile_bytes_still_escaped(tmp_path: Path) -> None:
    async def test(monitor: Monitor) -> None:
        monitor.app.save_dir = tmp_path
        client = await monitor.connect()
        await client.say(HOSTILE)
        await monitor.until(lambda: any(e.direction is Direction.ECHOED for e in monitor.feed.entries), "the line")
        saved = await save(monitor, "w", "W")
        text_file, json_file = sorted(tmp_path.iterdir(), key=lambda path: path.suffix, reverse=True)
        assert text_file.name.startswith("tui-echo-feed-") and text_file.suffix == ".txt"
        assert json_file.suffix == ".jsonl"
        assert sorted(saved) == sorted(
            [
                # the listening line, the connect line, the data line
                f"Saved: The feed (3 lines, {kind}) is in {path}"
                for kind, path in (("text", text_file), ("JSON Lines", json_file))
            ]
        )
        for path in (text_file, json_file):
            raw = path.read_bytes()
            assert b"\x1b" not in raw and b"\r" not in raw and b"\x07" not in raw and b"\xff" not in raw
        lines = text_file.read_text().splitlines()
        assert any(line.endswith(f"#1      ⇄ {HOSTILE_ESCAPED}") for line in lines)
        assert any("#1      • connected from 127.0.0.1:" in line for line in lines)
        records = [json.loads(line) for line in json_file.read_text().splitlines()]
        data = next(record for record in records if record["event"] == "data")
        assert data["client"] == 1 and data["mark"] == "⇄"
        assert data["data"] == HOSTILE_ESCAPED and data["len"] == len(HOSTILE) and data["truncated"] is False
        assert any(r["event"] == "system" and r["message"].startswith("connected from ") for r in records)

    run_monitor(test)


def test_on_a_clients_screen_the_save_keys_write_that_clients_history_only(tmp_path: Path) -> None:
    async def test(monitor: Monitor) -> None:
        monitor.app.save_dir = tmp_path
        first, second = await monitor.connect(), await monitor.connect()
        await first.say(b"from one")
        await second.say(b"from two")
        await monitor.until(lambda: [r.messages for r in monitor.table.rows] == [1, 1], "both counts")
        await open_client(monitor, 2)
        await save(monitor, "W")
        (saved,) = tmp_path.iterdir()
        assert saved.name.startswith("tui-echo-client2-")
        records = [json.loads(line) for line in saved.read_text().splitlines()]
        assert {record["client"] for record in records} == {2}
        assert [record["data"] for record in records if record["event"] == "data"] == ["from two"]

    run_monitor(test)


def test_the_palette_saves_too_and_a_failed_save_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    async def test(monitor: Monitor) -> None:
        monitor.app.save_dir = tmp_path
        await (await monitor.connect()).say(b"hello")
        await monitor.until(lambda: any(e.direction is Direction.ECHOED for e in monitor.feed.entries), "the line")
        await run_command(monitor, "save feed as json lines")
        await monitor.until(lambda: any(tmp_path.iterdir()), "the file")
        (saved,) = tmp_path.iterdir()
        assert saved.suffix == ".jsonl" and "hello" in saved.read_text()
        not_a_directory = tmp_path / "a-file"
        not_a_directory.write_text("")
        monitor.app.save_dir = not_a_directory
        (failed,) = await save(monitor, "w")
        assert failed.startswith(f"Not saved: {not_a_directory}/tui-echo-feed-") and "not a directory" in failed
        assert monitor.app.is_running and sorted(tmp_path.iterdir()) == sorted([saved, not_a_directory])

    run_monitor(test)


async def run_command(monitor: Monitor, search: str) -> None:
    await monitor.pilot.press("ctrl+p", *search)

    def best_hit() -> str:
        screen = monitor.app.screen
        if not isinstance(screen, CommandPalette):
            return ""
        hits = screen.query_one(OptionList)
        return str(hits.get_option_at_index(0).prompt).lower() if hits.option_count else ""

    await monitor.until(lambda: search in best_hit(), f"the palette to find {search!r}")
    await monitor.pilot.press("enter")


# ---- help -----------------------------------------------------------------


def key_displays(app: MonitorApp, bindings: list[Binding]) -> list[str]:
    return [app.get_key_display(binding) for binding in bindings]


def test_question_mark_and_f1_show_every_key_and_what_the_marks_mean() -> None:
    async def test(monitor: Monitor) -> None:
        app = monitor.app
        for key in ("question_mark", "f1"):
            await monitor.pilot.press(key)
            assert isinstance(app.screen, HelpScreen)
            lines = app.screen.text.splitlines()
            for direction in Direction:
                assert f"{direction}  {direction.meaning}" in lines
            # The main screen's every key, whether shown in the footer or not.
            classes = [MonitorApp, MainScreen, ConnectionsTable, Feed, SendBox]
            for binding in (b for cls in classes for b in cls.BINDINGS if isinstance(b, Binding)):
                shown = app.get_key_display(binding)
                assert any(shown in line.split("  ")[0].split() for line in lines), (binding, lines)
            assert any(line.startswith("^p  ") for line in lines)  # the palette, which Textual adds
            await monitor.pilot.press("escape")
            assert app.screen is app.screen_stack[0]

    run_monitor(test)


def test_help_on_a_clients_screen_lists_that_screens_keys_and_not_the_main_screens() -> None:
    async def test(monitor: Monitor) -> None:
        await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1], "a row")
        await open_client(monitor, 1)
        await monitor.pilot.press("question_mark")
        help_screen = monitor.app.screen
        assert isinstance(help_screen, HelpScreen)
        keys = {line.split("  ")[0] for line in help_screen.text.splitlines()}
        assert {"esc", "x", "s", "k", "w", "W", "? f1", "q ^q ^c"} <= keys
        assert not {"K", "f", "p", "c"} & keys  # the main screen's keys do nothing here
        await monitor.pilot.press("escape")
        assert isinstance(monitor.app.screen, ClientScreen)

    run_monitor(test)
