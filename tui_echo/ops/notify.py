"""What systemd hears from a running service (Type=notify): ready, how many clients, alive, stopping."""

from __future__ import annotations

import trio

from tui_echo.ops.systemd import Notifier
from tui_echo.server.server import EchoServer
from tui_echo.text import plural

STATUS_SECONDS = 1.0  # STATUS= is sent at most this often, and only when it changed


def status_line(server: EchoServer) -> str:
    totals = server.totals()
    return f"STATUS={plural(totals.clients_now, 'client')} now, {totals.clients_total} since the start"


async def tell_systemd(server: EchoServer, notifier: Notifier) -> None:
    """READY=1 once the server serves, STATUS= when the count changes (at most each second), WATCHDOG=1 at
    half the watchdog period, STOPPING=1 as soon as it stops. Returns once STOPPING=1 is sent."""
    await server.serving.wait()
    status = status_line(server)
    notifier.notify("READY=1", status)
    period = min(STATUS_SECONDS, notifier.watchdog_seconds or STATUS_SECONDS)
    while not server.stopping:
        with trio.move_on_after(period):
            await server.stop_requested.wait()
        if server.stopping:
            break
        latest = status_line(server)
        fields = ["WATCHDOG=1"] if notifier.watchdog_seconds is not None else []
        if latest != status:
            status = latest
            fields.append(status)
        if fields:
            notifier.notify(*fields)
    notifier.notify("STOPPING=1", "STATUS=stopping: closing every client")
