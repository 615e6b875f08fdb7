"""The monitor's signals: SIGINT and SIGTERM quit cleanly; SIGHUP (the terminal went away) leaves at once.

No trio here; the handlers run on the app's asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import NoReturn

QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HANG_UP_DEADLINE = 5.0  # seconds to close the clients after the terminal went away, before leaving anyway


def install(
    quit: Callable[[], object], hang_up: Callable[[], object], call_later: Callable[..., object]
) -> Callable[[], None]:
    """Route the signals to the app's handlers (through ``call_later``); returns what removes them."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    handlers = [(signum, quit) for signum in QUIT_SIGNALS] + [(signal.SIGHUP, hang_up)]
    for signum, handler in handlers:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signum, call_later, handler)
            installed.append(signum)

    def remove() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return remove


async def leave_after_hang_up(stop_server: Callable[[], Awaitable[None]]) -> NoReturn:
    """Close every client, then end the process without touching the screen.

    Textual's output thread dies on the first write to a vanished terminal, and
    later writes would block the event loop for good, so the usual exit (which
    restores the terminal) would hang. A timer thread ends the process even then.
    """
    threading.Timer(HANG_UP_DEADLINE, os._exit, args=(1,)).start()
    await stop_server()
    os._exit(0)
