"""One console over two servers at the default cap: 10,000 real clients, 5,000 on each, their ids
1..5,000 on both. Nothing here is timed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_echo.monitor.attached import AttachedApp, open_attached
from tui_echo.monitor.fleet import FleetSource
from tui_echo.server.commands import ClientAction, ForClients

from .helpers import TIMEOUT
from .many_clients import SETTLE_TIMEOUT, open_clients, open_files_for, totals, wait_until
from .monitor_helpers import SIZE, Monitor
from .process import HeadlessProcess

EACH = 5_000
# Heavy (10,000 sockets, three processes busy): one at a time with the heavy tests.
pytestmark = [pytest.mark.heavy, pytest.mark.tui, pytest.mark.timeout(300)]


@pytest.fixture
def crowded(tmp_path: Path) -> Iterator[tuple[HeadlessProcess, HeadlessProcess, list[socket.socket]]]:
    with (
        open_files_for(2 * EACH),
        contextlib.closing(HeadlessProcess("--control", str(tmp_path / "a.sock"))) as first,
        contextlib.closing(HeadlessProcess("--control", str(tmp_path / "b.sock"))) as second,
    ):
        clients = open_clients(first.port, EACH) + open_clients(second.port, EACH)
        try:
            for path in (tmp_path / "a.sock", tmp_path / "b.sock"):

                def settled(path: Path = path) -> bool:
                    return totals(path).get("clients_now") == EACH

                wait_until(settled, path.name, SETTLE_TIMEOUT)
            yield first, second, clients
        finally:
            for client in clients:
                client.close()


def test_10000_clients_of_two_servers_in_one_console_and_the_second_servers_kicked_by_filter(
    crowded: tuple[HeadlessProcess, HeadlessProcess, list[socket.socket]], tmp_path: Path
) -> None:
    first, second, clients = crowded

    async def main() -> None:
        source = open_attached([[tmp_path / "a.sock"], [tmp_path / "b.sock"]], [str(first.port), str(second.port)])
        assert isinstance(source, FleetSource)
        keys = source.keys
        app = AttachedApp(source, feed_lines=1000, handle_signals=False)
        async with app.run_test(size=SIZE) as pilot:
            monitor = Monitor(app, pilot, first.port)
            view = monitor.table.view
            await monitor.until(lambda: len(monitor.live_ids()) == 2 * EACH, "10,000 rows", SETTLE_TIMEOUT)
            assert {keys.label(key) for key in (1, 2, 2 * EACH - 1, 2 * EACH)} == {
                f"#1@{first.port}",
                f"#1@{second.port}",
                f"#{EACH}@{first.port}",
                f"#{EACH}@{second.port}",
            }
            assert app.main.apply_filter(f"@{second.port}")
            assert view.clients_shown == EACH
            app.main.command(ForClients(ClientAction.KICK, tuple(view.shown_ids())))
            await monitor.until(lambda: not monitor.live_ids(), "the second server's clients gone", SETTLE_TIMEOUT)
            assert app.main.apply_filter("")
            live = monitor.live_ids()
            assert len(live) == EACH and {keys.server(key) for key in live} == {0}
            await pilot.press("q")

    asyncio.run(main())
    for client in clients[EACH:]:  # the second server's, every one kicked: EOF
        client.settimeout(TIMEOUT)
        assert client.recv(1) == b""
    assert totals(tmp_path / "a.sock").get("clients_now") == EACH  # the first server's, all still there
