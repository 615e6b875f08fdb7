"""A broadcast from the send box, at the size the issue met it: 2000 real clients, one feed line, one send per tick."""

from __future__ import annotations

import asyncio
import resource

import pytest
from textual.widgets import Checkbox

from tui_echo.monitor.models.feed import Direction

from .monitor_helpers import Monitor, run_monitor, screen_lines, screen_text

pytestmark = [pytest.mark.tui, pytest.mark.heavy]  # 2,000 clients, both ends in this process

CLIENTS = 2000


def raise_open_files(needed: int) -> None:
    """Each client is two sockets in this one process (its end and the server's)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def test_a_broadcast_to_2000_clients_is_one_feed_line_skips_nothing_and_the_all_tick_clears() -> None:
    raise_open_files(2 * CLIENTS + 200)

    async def test(monitor: Monitor) -> None:
        clients = [await monitor.connect() for _ in range(CLIENTS)]
        await monitor.until(lambda: len(monitor.live_ids()) == CLIENTS, f"{CLIENTS} rows", timeout=60)
        tick = monitor.app.query_one(Checkbox)
        await monitor.pilot.press("s", "ctrl+t")
        assert tick.value and "to all" in screen_text(monitor.app)[-2]
        await monitor.pilot.press(*"hello", "enter")
        await asyncio.gather(*(client.receive(5) for client in clients))
        assert not tick.value  # one broadcast per tick: the next Enter goes to the selected client alone
        await monitor.until(lambda: any(entry.everyone for entry in monitor.feed.entries), "the broadcast's line")
        sent = [entry for entry in monitor.feed.entries if entry.direction is Direction.SENT]
        assert [(entry.client_id, entry.to, entry.text) for entry in sent] == [
            (None, f"all ({CLIENTS} clients)", "hello")
        ]
        line = f"server → all ({CLIENTS} clients)  hello"
        await monitor.until(lambda: any(line in text for text in screen_lines(monitor.feed)), "the line on screen")
        # Every count exact without an event per client, nothing skipped, and no client called busy.
        await monitor.until(lambda: all(row.bytes_out == 5 for row in monitor.table.rows), "each row's 5 B out")
        await monitor.until(lambda: monitor.app.server.totals().bytes_out == 5 * CLIENTS, "the total out")
        assert "feed skipped" not in "\n".join(screen_text(monitor.app)[:4])
        assert not [entry.text for entry in monitor.feed.entries if "busy" in entry.text]

        await monitor.pilot.press(*"again", "enter")  # the cursor is on #1
        assert await clients[0].receive(5) == b"again"
        await clients[1].say(b"mine")  # its next bytes are its own echo: "again" never went to it
        await monitor.until(lambda: len(monitor.feed.entries) and monitor.feed.entries[-1].text == "mine", "the echo")
        assert [entry.client_id for entry in monitor.feed.entries if entry.direction is Direction.SENT] == [None, 1]

    run_monitor(test)
