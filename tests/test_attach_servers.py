"""Several separate servers in one console (``tui-echo attach P1 P2``, ``--all``): real headless servers
over their real control sockets, and the attached monitor driven with Pilot. Both servers count their
clients from 1: the console keys them apart, and shows and acts on each as its server names it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tui_echo.client_filter import compile_filter
from tui_echo.client_keys import ClientKeys
from tui_echo.control.client import ConsoleError, TargetError
from tui_echo.control.protocol import ProtocolError, parse_command
from tui_echo.control.fleet import resolve_servers
from tui_echo.monitor.attached import AttachedApp, ServerGone, open_attached
from tui_echo.monitor.fleet import FleetSource
from tui_echo.monitor.remote import _ONE_CLIENTS
from tui_echo.monitor.widgets.stats_bar import StatsText
from tui_echo.server import events
from tui_echo.server.commands import Ban, BanAddress

from .helpers import TIMEOUT
from .monitor_helpers import SIZE, Client, Monitor, screen_text
from .process import HeadlessProcess


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[HeadlessProcess, HeadlessProcess]]:
    with (
        contextlib.closing(HeadlessProcess("--control", str(tmp_path / "a.sock"))) as first,
        contextlib.closing(HeadlessProcess("--control", str(tmp_path / "b.sock"))) as second,
    ):
        yield first, second


# ---- the keys: pure --------------------------------------------------------------------------


def test_keys_interleave_the_servers_ids_and_give_back_each_servers_own() -> None:
    keys = ClientKeys(("7001", "7002", "m.sock"), (1, 2, 1))
    seen = set()
    for place in range(3):
        for client_id in range(1, 50):
            key = keys.key(place, client_id)
            assert (keys.server(key), keys.number(key)) == (place, client_id)
            seen.add(key)
    assert len(seen) == 3 * 49  # no two clients of the console share a key
    assert keys.label(keys.key(1, 12)) == "#12@7002"
    assert keys.worker(keys.key(1, 12)) == 2 and keys.worker(keys.key(1, 13)) == 1 and keys.worker(1) is None
    assert keys.keys_of("#12") == [keys.key(place, 12) for place in range(3)]
    assert keys.keys_of(" #12@m.sock ") == [keys.key(2, 12)] and keys.keys_of("#12@nowhere") is None
    one = ClientKeys()
    assert one.key(0, 12) == 12 and one.label(12) == "#12" and one.keys_of("12") == [12]


@dataclasses.dataclass
class _Row:
    client_id: int
    peer: tuple[str, int] = ("127.0.0.1", 5000)
    status: str = "connected"
    tls_version: str | None = None
    label: str = ""


def test_a_filter_over_several_servers_reads_each_servers_ids_and_names() -> None:
    keys = ClientKeys(("7001", "7002"), (1, 1))
    rows = [_Row(keys.key(place, client_id)) for place in (0, 1) for client_id in (1, 33)]

    def matching(text: str) -> list[str]:
        return [keys.label(row.client_id) for row in compile_filter(text, keys).select(rows)]

    assert matching("#1") == ["#1@7001", "#1@7002"]  # both servers' #1, not key 1 alone
    assert matching("#1@7002") == ["#1@7002"]
    assert matching("@7001") == ["#1@7001", "#33@7001"]
    assert matching("33") == ["#33@7001", "#33@7002"]
    assert matching("/^#33@7002 /") == ["#33@7002"]
    with pytest.raises(ValueError, match="no server here is named"):
        compile_filter("@7003", keys)


def test_every_event_about_one_client_is_keyed() -> None:
    """A new event kind with a client id must be keyed too, or its client would show as another."""
    kinds = [
        kind
        for kind in vars(events).values()
        if isinstance(kind, type)
        and dataclasses.is_dataclass(kind)
        and any(field.name == "client_id" for field in dataclasses.fields(kind))
    ]
    assert kinds and all(issubclass(kind, _ONE_CLIENTS) for kind in kinds)


# ---- finding the servers ----------------------------------------------------------------------


def test_all_finds_every_running_server_named_by_port(two: tuple[HeadlessProcess, HeadlessProcess]) -> None:
    first, second = two
    found = dict(resolve_servers(None))
    assert {name: [path.name for path in paths] for name, paths in found.items()} == {
        str(first.port): ["a.sock"],
        str(second.port): ["b.sock"],
    }


def test_a_bad_target_among_them_is_one_error_and_leaves_nothing_attached(
    two: tuple[HeadlessProcess, HeadlessProcess], tmp_path: Path
) -> None:
    first, second = two
    with pytest.raises(TargetError, match="name the same server"):
        resolve_servers([str(first.port), str(tmp_path / "a.sock")])
    with pytest.raises(TargetError, match="no tui-echo server"):
        resolve_servers([str(first.port), "1"])
    sockets_before = _open_sockets()
    servers = [paths for _, paths in resolve_servers([str(first.port), str(second.port)])]
    with pytest.raises(ConsoleError) as failed:
        open_attached([*servers, [tmp_path / "nothing.sock"]], ["a", "b", "nothing.sock"])
    # The two it had attached to were let go: closed, not left to the collector (the traceback, still
    # held here, holds what the failed call had opened).
    assert failed.traceback and _open_sockets() == sockets_before


def _open_sockets() -> int:
    """This process's open sockets (the listing's own fd is gone by the time it is read: skipped)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


# ---- one console over both ---------------------------------------------------------------------

Test = Callable[[Monitor, FleetSource, Client, Client], Awaitable[None]]


def in_one_console(two: tuple[HeadlessProcess, HeadlessProcess], tmp_path: Path, test: Test) -> None:
    """Attach to both servers, named by port, connect a client to each (both are #1), and run ``test``."""
    first, second = two

    async def main() -> None:
        source = open_attached([[tmp_path / "a.sock"], [tmp_path / "b.sock"]], [str(first.port), str(second.port)])
        assert isinstance(source, FleetSource)
        app = AttachedApp(source, feed_lines=1000, handle_signals=False)
        async with app.run_test(size=SIZE) as pilot:
            monitor = Monitor(app, pilot, first.port)
            on_first = await monitor.connect()
            monitor.port = second.port
            on_second = await monitor.connect()
            both = sorted([source.keys.key(0, 1), source.keys.key(1, 1)])
            await monitor.until(lambda: sorted(monitor.live_ids()) == both, "both #1 rows")
            await test(monitor, source, on_first, on_second)
            await pilot.press("q")

    asyncio.run(main())


@pytest.mark.tui
def test_two_servers_both_with_a_client_1_in_one_console(
    two: tuple[HeadlessProcess, HeadlessProcess], tmp_path: Path
) -> None:
    first, second = two
    names = [str(first.port), str(second.port)]

    async def test(monitor: Monitor, source: FleetSource, on_first: Client, on_second: Client) -> None:
        app, pilot, keys = monitor.app, monitor.pilot, source.keys
        stats = app.query_one(StatsText)
        await monitor.until(lambda: stats.stats is not None and "clients 2 now" in stats.render().plain, "the sum")

        def rows_shown() -> list[str]:
            return [line for line in screen_text(app) if "127.0.0.1:" in line and "#1 " in line]

        await monitor.until(lambda: len(rows_shown()) == 2, "two rows on screen")
        assert sorted(next(name for name in names if name in line) for line in rows_shown()) == sorted(names)

        # Go to the second server's #1 as the screen names it, and kick it with k.
        await monitor.palette(f"#1@{second.port}", f"Go to client #1@{second.port}")
        await monitor.until(lambda: app.main.table.cursor_client == keys.key(1, 1), "the cursor on it")
        await pilot.press("k")
        assert await _eof(on_second)
        second.wait_for(lambda line: "#1 " in line and "disconnected: kicked" in line)
        await _echoes(on_first)  # the other #1 was not touched
        await monitor.until(lambda: monitor.live_ids() == [keys.key(0, 1)], "one row left")

        # The table's filter: a server by name.
        again = await monitor.connect()  # #2 on the second server
        await monitor.until(lambda: keys.key(1, 2) in monitor.live_ids(), "its #2")
        assert app.main.apply_filter(f"@{second.port}")
        await monitor.until(lambda: monitor.live_ids() == [keys.key(1, 2)], "the second server's rows alone")
        assert app.main.apply_filter("")

        # The second server stops: said once, its rows go, the first server's stay.
        second.stop()
        await monitor.until(lambda: monitor.live_ids() == [keys.key(0, 1)], "the first server's row alone")
        said = f"server {second.port} (pid {second.proc.pid}) stopped; its clients are not shown"
        await monitor.until(lambda: any(said in entry.text for entry in monitor.feed.entries), "said")
        await pilot.pause(0.5)
        assert sum(said in entry.text for entry in monitor.feed.entries) == 1
        assert not isinstance(app.screen, ServerGone)  # the console carries on with the other
        await _echoes(on_first)
        await monitor.until(lambda: stats.stats is not None and "clients 1 now" in stats.render().plain, "1")
        again.writer.close()

    in_one_console(two, tmp_path, test)
    assert first.proc.poll() is None  # detached: the first server carries on


@pytest.mark.tui
def test_a_ban_in_a_console_of_two_servers_bans_the_address_on_both(
    two: tuple[HeadlessProcess, HeadlessProcess], tmp_path: Path
) -> None:

    async def test(monitor: Monitor, source: FleetSource, on_first: Client, on_second: Client) -> None:
        monitor.app.main.command(Ban(source.keys.key(1, 1)))  # the second server's #1, from 127.0.0.1
        assert await _eof(on_second) and await _eof(on_first)  # its address is banned on both
        await monitor.until(lambda: all(member.bans() for member in source.members), "both servers' bans")

    in_one_console(two, tmp_path, test)
    for server in two:
        server.wait_for(lambda line: "banned 127.0.0.1" in line)
        refused = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        assert refused.recv(10) == b""  # a new client from it is refused by either
        refused.close()


def test_a_ban_of_an_address_takes_an_ip_address_only() -> None:
    message = {"type": "command", "id": 1, "command": "ban_address"}
    assert parse_command({**message, "address": "::ffff:10.0.0.7"}).command() == BanAddress("::ffff:10.0.0.7")
    with pytest.raises(ProtocolError, match="not an IP address"):
        parse_command({**message, "address": "example.org"}).command()


async def _eof(client: Client) -> bool:
    return await asyncio.wait_for(client.reader.read(), TIMEOUT) == b""


async def _echoes(client: Client) -> None:
    client.writer.write(b"still here\n")
    await client.writer.drain()
    assert await asyncio.wait_for(client.reader.readexactly(11), TIMEOUT) == b"still here\n"
