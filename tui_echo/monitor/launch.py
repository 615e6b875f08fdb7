"""Open the monitor on an in-process server (``tui-echo``, ``tui-echo demo``) and run it until it quits."""

from __future__ import annotations

import sys

from tui_echo.arguments import PROG
from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.guest import GuestServer
from tui_echo.server.binding import ListenError
from tui_echo.server.config import DEFAULT_FEED_LINES


def run_monitor(server: GuestServer, feed_lines: int = DEFAULT_FEED_LINES) -> int:
    """Bind ``server``, then open the monitor on it until it quits; a port that cannot be had is one line, exit 2."""
    try:
        server.listen()
    except ListenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    app = MonitorApp(server, feed_lines=feed_lines)
    app.run()
    return app.return_code or 0
