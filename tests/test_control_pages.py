"""The control protocol at any size: snapshots and counts come in pages, never one line per server.

In process, with a small page so that a few clients make several pages; the 10,000-client runs
against the installed server are in ``test_ten_thousand.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from tui_echo.control import protocol
from tui_echo.control.protocol import ProtocolError, SnapshotPages

from .control_helpers import Console, controlled_server
from .helpers import connect, receive_exactly, receive_until_eof

PAGE = 10
CLIENTS = 25  # three pages: 10, 10 and 5


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "PAGE_CLIENTS", PAGE)


@pytest.mark.trio
async def test_a_snapshot_is_a_header_then_pages_of_clients(tmp_path: Path, small_pages: None) -> None:
    async with controlled_server(tmp_path) as run:
        clients = [await connect(run.port) for _ in range(CLIENTS)]
        for client in clients:  # each one counted in before the console asks
            await client.send_all(b"x")
            await receive_exactly(client, 1)
        console = await run.console(events=False)
        header = await console.read_until("snapshot")
        assert header["client_count"] == CLIENTS and "clients" not in header
        pages = [await console.read() for _ in range(3)]
        assert [page["type"] for page in pages if page] == ["snapshot_clients"] * 3
        assert [len(page["clients"]) for page in pages if page] == [10, 10, 5]
        ids = [record["client"] for page in pages if page for record in page["clients"]]
        assert ids == list(range(1, CLIENTS + 1))
        for client in clients:
            await client.aclose()
        await console.aclose()


@pytest.mark.trio
async def test_counts_of_many_clients_come_in_pages_and_only_the_last_carries_the_totals(
    tmp_path: Path, small_pages: None
) -> None:
    async with controlled_server(tmp_path) as run:
        clients = [await connect(run.port) for _ in range(CLIENTS)]
        console = await run.console()
        await console.read_snapshot()
        async with trio.open_nursery() as nursery:  # all at once: one tick sees most of them change
            for client in clients:
                nursery.start_soon(client.send_all, b"hello\n")
        for client in clients:
            await receive_exactly(client, 6)
        heard: dict[int, int] = {}
        while True:  # until the totals say every client has talked
            counts = await console.read_until("counts")
            assert len(counts["clients"]) <= PAGE
            heard.update((record["client"], record["messages_in"]) for record in counts["clients"])
            if "totals" not in counts:
                assert len(counts["clients"]) == PAGE  # only a full page goes without the totals
            elif counts["totals"]["messages_in"] == CLIENTS:
                assert "bans" in counts and "data_dropped" in counts
                break
        assert heard == {client_id: 1 for client_id in range(1, CLIENTS + 1)}
        for client in clients:
            await client.aclose()
        await console.aclose()


def test_a_ticks_counts_split_into_pages_and_the_last_alone_carries_the_totals(small_pages: None) -> None:
    changed = [{"client": n} for n in range(1, CLIENTS + 1)]
    totals = {"clients_now": CLIENTS}
    messages = protocol.counts("T", changed, totals, [], 3, None)
    assert [len(message["clients"]) for message in messages] == [10, 10, 5]
    assert [sorted(message) for message in messages[:2]] == [["clients", "time", "type"]] * 2
    assert messages[2] == {
        "type": "counts",
        "time": "T",
        "clients": changed[20:],
        "totals": totals,
        "bans": [],
        "data_dropped": 3,
    }
    assert [record for message in messages for record in message["clients"]] == changed
    only = protocol.counts("T", [], totals, [], 0, [{"rule": 1}])  # nothing changed but the totals
    assert only == [
        {
            "type": "counts",
            "time": "T",
            "clients": [],
            "totals": totals,
            "bans": [],
            "data_dropped": 0,
            "rules": [{"rule": 1}],
        }
    ]
    assert len(protocol.counts("T", changed[:PAGE], totals, [], 0, None)) == 1  # a full page, with the totals


def test_pages_are_gathered_into_one_snapshot() -> None:
    pages = SnapshotPages({"type": "snapshot", "client_count": 3, "lost": 0})
    assert not pages.complete
    pages.add({"type": "snapshot_clients", "clients": [{"client": 1}, {"client": 2}]})
    assert not pages.complete
    pages.add({"type": "snapshot_clients", "clients": [{"client": 3}]})
    assert pages.complete
    assert pages.snapshot == {
        "type": "snapshot",
        "client_count": 3,
        "lost": 0,
        "clients": [{"client": n} for n in (1, 2, 3)],
    }
    assert SnapshotPages({"type": "snapshot", "client_count": 0}).complete


@pytest.mark.parametrize(
    ("header", "page"),
    [
        ({"type": "snapshot"}, None),  # no count
        ({"type": "snapshot", "client_count": "2"}, None),
        ({"type": "snapshot", "client_count": True}, None),
        ({"type": "snapshot", "client_count": -1}, None),
        ({"type": "snapshot", "client_count": 2}, {"type": "event", "event": "connected"}),  # cut by another message
        ({"type": "snapshot", "client_count": 2}, {"type": "snapshot_clients", "clients": "none"}),
        ({"type": "snapshot", "client_count": 1}, {"type": "snapshot_clients", "clients": [{}, {}]}),  # too many
    ],
)
def test_a_snapshot_that_does_not_add_up_is_a_protocol_error(header: dict[str, object], page: object) -> None:
    with pytest.raises(ProtocolError):
        pages = SnapshotPages(header)
        assert isinstance(page, dict)
        pages.add(page)


def test_a_page_of_the_largest_client_records_fits_a_line_many_times_over() -> None:
    """Worst case per record: an IPv6 peer with a zone, TLS names, the longest status, huge counts."""
    record = {
        "peer": "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%eth0-long-name]:65535",
        "connected": "2026-12-07T05:00:00.000Z",
        "tls_version": "TLSv1.3",
        "tls_cipher": "TLS_CHACHA20_POLY1305_SHA256" * 2,
        "client": 2**63,
        "last_activity": "2026-12-07T05:00:00.000Z",
        "messages_in": 2**63,
        "bytes_in": 2**63,
        "bytes_out": 2**63,
        "dropped_out": 2**63,
        "status": "slow reader",
    }
    page = {"type": "snapshot_clients", "clients": [record] * protocol.PAGE_CLIENTS}
    assert len(json.dumps(page, separators=(",", ":"))) * 2 < protocol.MAX_LINE_BYTES


@pytest.mark.trio
async def test_a_console_that_only_sends_commands_can_ask_for_no_snapshot(tmp_path: Path) -> None:
    """What `ctl kick` does: a snapshot of 10,000 clients would take the server's loop a while."""
    async with controlled_server(tmp_path) as run:
        client = await connect(run.port)
        console = Console(await trio.open_unix_socket(str(run.path)))
        assert (await console.read() or {})["type"] == "hello"
        await console.send(protocol.hello("console", events=False, snapshot=False))
        await console.send(protocol.command_message(1, "kick", client=1))
        assert await console.read() == {"type": "reply", "id": 1, "ok": True}  # no snapshot first
        assert await receive_until_eof(client) == b""
        await console.aclose()
