"""Labels and commands for many clients, through the control protocol, with real clients (issue 18)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from tui_echo.control import protocol
from tui_echo.server.clients import MAX_LABEL_CHARS
from tui_echo.server.events import ClientLabelled, ServerNotice

from .control_helpers import controlled_server
from .helpers import TIMEOUT, connect, receive_exactly, receive_until_eof

pytestmark = pytest.mark.trio


async def _wait_clients(run, count: int) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TIMEOUT):
        while len(list(run.server.clients())) < count:
            await trio.sleep(0.01)


async def test_a_label_reaches_the_server_state_the_event_the_counts_and_a_new_snapshot(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        client = await connect(run.port)
        await _wait_clients(run, 1)
        console = await run.console()
        await console.read_until("snapshot")
        reply = await console.command(1, "label", client=1, text="alice\x1b[31m")
        assert reply["ok"] and "acted" not in reply
        [state] = run.server.clients()
        assert state.label == "alice\x1b[31m"  # kept as given; shown escaped
        labelled = await console.read_until("event", event="labelled")
        assert (labelled["client"], labelled["label"], labelled["rule"]) == (1, "alice\x1b[31m", None)
        counts = await console.read_until("counts")
        assert [(c["client"], c["label"]) for c in counts["clients"]] == [(1, "alice\x1b[31m")]
        # The same label again: no event, no count record.
        assert (await console.command(2, "label", client=1, text="alice\x1b[31m"))["ok"]
        assert [e.label for e in run.recorder.of(ClientLabelled)] == ["alice\x1b[31m"]
        later = await console.command(3, "label", client=1, text="")
        assert later["ok"] and [e.label for e in run.recorder.of(ClientLabelled)] == ["alice\x1b[31m", ""]
        fresh = await run.console(events=False)
        snapshot = await fresh.read_snapshot()
        assert snapshot["clients"][0]["label"] == ""
        await fresh.aclose()
        await console.aclose()
        await client.aclose()


async def test_a_bad_label_or_client_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        client = await connect(run.port)
        await _wait_clients(run, 1)
        console = await run.console(events=False)
        await console.read_until("snapshot")
        too_long = await console.command(1, "label", client=1, text="x" * (MAX_LABEL_CHARS + 1))
        assert (too_long["ok"], too_long["error"]) == (False, "bad_value")
        nobody = await console.command(2, "label", client=9, text="bob")
        assert (nobody["ok"], nobody["error"]) == (False, "no_such_client")
        assert [state.label for state in run.server.clients()] == [""]
        assert run.recorder.of(ClientLabelled) == []
        await console.aclose()
        await client.aclose()


async def test_kick_clients_kicks_exactly_the_listed_ones_at_once_and_names_those_already_gone(
    tmp_path: Path,
) -> None:
    async with controlled_server(tmp_path) as run:
        clients = [await connect(run.port) for _ in range(5)]
        await _wait_clients(run, 5)
        console = await run.console(events=False)
        await console.read_until("snapshot")
        reply = await console.command(1, "kick_clients", clients=[2, 4, 99, 2, 77])
        assert (reply["ok"], reply["acted"], reply["gone"]) == (True, 2, [99, 77])
        for n in (1, 3):
            assert await receive_until_eof(clients[n]) == b""
        for n in (0, 2, 4):  # still echoed
            await clients[n].send_all(b"here\n")
            assert await receive_exactly(clients[n], 5) == b"here\n"
        with trio.fail_after(TIMEOUT):
            while sorted(state.client_id for state in run.server.clients()) != [1, 3, 5]:
                await trio.sleep(0.01)
        notices = [e.message for e in run.recorder.of(ServerNotice)]
        who = f"console uid {os.getuid()} pid {os.getpid()}"
        assert f"kick for 5 listed clients by {who}" in notices
        assert "kicked 2 clients of 5; 2 clients already gone (#99, #77)" in notices
        await console.aclose()
        for client in clients:
            await client.aclose()


async def test_send_clients_and_ban_clients_act_on_the_listed_ones(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        clients = [await connect(run.port) for _ in range(3)]
        await _wait_clients(run, 3)
        console = await run.console(events=False)
        await console.read_until("snapshot")
        reply = await console.command(1, "send_clients", clients=[1, 3], data_b64=protocol.data_b64(b"psst\n"))
        assert (reply["acted"], reply["gone"]) == (2, [])
        assert await receive_exactly(clients[0], 5) == b"psst\n"
        assert await receive_exactly(clients[2], 5) == b"psst\n"
        await clients[1].send_all(b"me?\n")
        assert await receive_exactly(clients[1], 4) == b"me?\n"  # nothing of the send before its echo
        banned = await console.command(2, "ban_clients", clients=[2])
        assert (banned["acted"], banned["gone"]) == (1, [])
        for client in clients:  # all three come from 127.0.0.1: a ban closes every client from it
            assert await receive_until_eof(client) == b""
        assert [ban.address for ban in run.server.bans()] == ["127.0.0.1"]
        await console.aclose()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"clients": [1, "2"]}, "bad_value"),
        ({"clients": [0]}, "bad_value"),
        ({"clients": [True]}, "bad_value"),
        ({"clients": 3}, "bad_type"),
        ({"clients": list(range(1, protocol.MAX_CLIENT_IDS + 2))}, "too_big"),
    ],
)
async def test_a_bad_list_of_ids_is_refused(tmp_path: Path, fields: dict[str, object], error: str) -> None:
    async with controlled_server(tmp_path) as run:
        client = await connect(run.port)
        await _wait_clients(run, 1)
        console = await run.console(events=False)
        await console.read_until("snapshot")
        reply = await console.command(1, "kick_clients", **fields)
        assert (reply["ok"], reply["error"]) == (False, error)
        assert len(list(run.server.clients())) == 1
        await console.aclose()
        await client.aclose()
