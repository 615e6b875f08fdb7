"""Acting on many clients and labels, driven by keys against a real server and real clients: kick, send and ban
the tagged, the filtered or a group (one question with the count, then one command for a fixed set of ids),
and N to name a client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tui_echo.monitor.screens.ask import AskScreen
from tui_echo.monitor.screens.client_detail import ClientScreen
from tui_echo.monitor.screens.confirm import ConfirmScreen
from tui_echo.server.commands import Label

from .monitor_helpers import Client, Monitor, on_screen, run_monitor, screen_text
from .process import HeadlessProcess
from .test_monitor_attached import run_attached
from .test_monitor_find import clients_from, stats_text

pytestmark = pytest.mark.tui


def question(monitor: Monitor) -> str:
    screen = monitor.app.screen
    assert isinstance(screen, ConfirmScreen), screen
    return "\n".join(screen_text(monitor.app))


async def still_open(client: Client) -> None:
    await client.say(b"still here")


async def answer(monitor: Monitor, key: str) -> None:
    await monitor.until(lambda: isinstance(monitor.app.screen, ConfirmScreen), "the question")
    await monitor.pilot.press(key)
    await monitor.until(lambda: not isinstance(monitor.app.screen, ConfirmScreen), "the question answered")


def test_k_kicks_the_tagged_clients_after_one_question_with_the_count() -> None:
    async def test(monitor: Monitor) -> None:
        clients = [await monitor.connect() for _ in range(3)]
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "three rows")
        await monitor.pilot.press("space", "down", "space")  # #1 and #3
        await monitor.until(lambda: "to 2 tagged" in " ".join(on_screen(monitor.app.query_one("#send"))), "send")
        await monitor.pilot.press("k")
        await monitor.until(lambda: isinstance(monitor.app.screen, ConfirmScreen), "the question")
        assert "Kick the tagged 2 clients (#1, #3)?" in question(monitor).replace("\n", " ")
        await answer(monitor, "n")  # no: nobody is kicked
        await still_open(clients[0])
        await monitor.pilot.press("k")
        await answer(monitor, "y")
        assert await clients[0].until_eof() == b"" and await clients[2].until_eof() == b""
        await still_open(clients[1])
        await monitor.until(lambda: monitor.live_ids() == [2], "the two gone")
        await monitor.until(lambda: monitor.table.view.tags == set(), "their tags gone with their rows")

    run_monitor(test)


def test_the_filtered_clients_are_kicked_as_a_fixed_set_and_K_asks_when_the_filter_hides_some() -> None:
    async def test(monitor: Monitor) -> None:
        matching = await clients_from(monitor, "127.0.0.21", 2)
        other = (await clients_from(monitor, "127.0.0.22", 1))[0]
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "three rows")
        await monitor.pilot.press("slash", *"127.0.0.21", "enter")
        await monitor.until(lambda: monitor.live_ids() == [1, 2], "the filter")

        await monitor.pilot.press("K")  # the filter hides #3: ask first
        await monitor.until(lambda: isinstance(monitor.app.screen, ConfirmScreen), "the question")
        assert "shows 2 of 3 clients. Kick all 3 connected" in question(monitor).replace("\n", " ")
        await answer(monitor, "n")
        await still_open(other)

        await monitor.palette("kick the filtered", "Kick the filtered clients")
        await monitor.until(lambda: isinstance(monitor.app.screen, ConfirmScreen), "the question")
        assert "Kick the filtered 2 clients (#1, #2)?" in question(monitor).replace("\n", " ")
        late = (await clients_from(monitor, "127.0.0.21", 1))[0]  # matches, but came after the question
        await monitor.until(lambda: monitor.table.view.shown_ids() == [1, 2, 4], "the newcomer shown")
        await answer(monitor, "y")
        for client in matching:
            assert await client.until_eof() == b""
        await still_open(late)
        await still_open(other)

    run_monitor(test)


def test_a_groups_kick_asks_and_kicks_that_address_only() -> None:
    async def test(monitor: Monitor) -> None:
        group = await clients_from(monitor, "127.0.0.31", 3)
        other = (await clients_from(monitor, "127.0.0.32", 1))[0]
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3, 4], "four rows")
        await monitor.pilot.press("G")
        await monitor.until(lambda: len(monitor.table.rows) == 2, "two groups")
        await monitor.pilot.press("k")
        await monitor.until(lambda: isinstance(monitor.app.screen, ConfirmScreen), "the question")
        assert "Kick the 127.0.0.31 3 clients (#1, #2, #3)?" in question(monitor).replace("\n", " ")
        await answer(monitor, "y")
        for client in group:
            assert await client.until_eof() == b""
        await still_open(other)

    run_monitor(test)


def test_a_send_goes_to_the_tagged_clients_only_after_a_question() -> None:
    async def test(monitor: Monitor) -> None:
        clients = [await monitor.connect() for _ in range(3)]
        await monitor.until(lambda: monitor.live_ids() == [1, 2, 3], "three rows")
        await monitor.pilot.press("down", "space", "space")  # #2 and #3
        await monitor.pilot.press("s", *"hi all", "enter")
        await monitor.until(lambda: isinstance(monitor.app.screen, ConfirmScreen), "the question")
        assert "Send 6 B to the tagged 2 clients (#2, #3)?" in question(monitor).replace("\n", " ")
        await answer(monitor, "y")
        assert await clients[1].receive(6) == b"hi all" and await clients[2].receive(6) == b"hi all"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(clients[0].reader.read(1), 0.5)  # nothing for the untagged

    run_monitor(test)


def test_n_labels_the_selected_client_the_table_and_its_screen_show_it_escaped_and_the_filter_finds_it() -> None:
    async def test(monitor: Monitor) -> None:
        for _ in range(2):
            await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1, 2], "two rows")
        assert "label" not in on_screen(monitor.table)[0]  # no column until a client has a label
        await monitor.pilot.press("down", "N")
        await monitor.until(lambda: isinstance(monitor.app.screen, AskScreen), "the question")
        await monitor.pilot.press(*"alice", "enter")
        await monitor.until(lambda: "alice" in " ".join(on_screen(monitor.table)), "the label in the table")
        assert on_screen(monitor.table)[0].split()[:3] == ["id▲", "peer", "label"]
        await monitor.until(lambda: any("labelled “alice”" in e.text for e in monitor.feed.entries), "the feed")
        await monitor.clients[1].say(b"hi from alice")  # her lines carry her name next to her id
        await monitor.until(
            lambda: any("#2 alice ⇄ hi from alice" in line for line in on_screen(monitor.feed)),
            lambda: "\n".join(on_screen(monitor.feed)),
        )

        monitor.app.screen.command(Label(1, "\x1b[2J[red]x"))  # type: ignore[attr-defined]
        await monitor.until(lambda: "\\x1b[2J[red]x" in " ".join(on_screen(monitor.table)), "escaped, as written")

        await monitor.pilot.press("slash", *"ALICE", "enter")  # a label is found by the filter, any case
        await monitor.until(lambda: monitor.live_ids() == [2], "alice only")
        await monitor.pilot.press("enter")
        await monitor.until(lambda: isinstance(monitor.app.screen, ClientScreen), "her screen")
        head = " ".join(on_screen(monitor.app.screen.query_one("#client-head")))
        assert "#2 alice" in head

    run_monitor(test)


def test_tagging_and_filtering_say_so_on_the_stats_bar() -> None:
    async def test(monitor: Monitor) -> None:
        for _ in range(2):
            await monitor.connect()
        await monitor.until(lambda: monitor.live_ids() == [1, 2], "two rows")
        await monitor.pilot.press("space", "slash", *"#1|#2", "enter")
        await monitor.until(lambda: "showing 2 of 2 · filter: #1|#2 · 1 tagged" in stats_text(monitor), "both notes")

    run_monitor(test)


def test_an_attached_console_filters_labels_and_kicks_the_tagged_over_the_control_socket(tmp_path: Path) -> None:
    async def test(monitor: Monitor, server: HeadlessProcess) -> None:
        clients = [await monitor.connect() for _ in range(3)]
        await monitor.until(lambda: len(monitor.live_ids()) == 3, "three rows")
        first = min(monitor.live_ids())
        await monitor.pilot.press("N")
        await monitor.until(lambda: isinstance(monitor.app.screen, AskScreen), "the question")
        await monitor.pilot.press(*"bob", "enter")
        await monitor.until(lambda: "bob" in " ".join(on_screen(monitor.table)), "the label, from the server")
        await monitor.pilot.press("slash", *"!bob", "enter")
        await monitor.until(lambda: len(monitor.live_ids()) == 2 and first not in monitor.live_ids(), "not bob")
        await monitor.pilot.press("space", "space")  # both shown: tagged
        await monitor.pilot.press("k")
        await monitor.until(lambda: isinstance(monitor.app.screen, ConfirmScreen), "the question")
        assert "Kick the tagged 2 clients" in question(monitor).replace("\n", " ")
        await answer(monitor, "y")
        assert await clients[1].until_eof() == b"" and await clients[2].until_eof() == b""
        await still_open(clients[0])

    run_attached(tmp_path / "control.sock", test)
