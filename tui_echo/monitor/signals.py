"""The monitor's signals: SIGINT and SIGTERM quit cleanly; SIGHUP (the terminal went away) leaves at once;
SIGUSR1 reloads an in-process server's files (left to its default, it would end the process).

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
LEAVE_DEADLINE = 3.0  # seconds a console told to go (its tab or web server gone, SIGTERM) has to quit cleanly


def install(
    quit: Callable[[], object],
    hang_up: Callable[[], object],
    call_later: Callable[..., object],
    *,
    quit_deadline: float | None = None,
    reload: Callable[[], object] | None = None,
) -> Callable[[], None]:
    """Route the signals to the app's handlers (through ``call_later``); returns what removes them.

    ``quit_deadline``: after SIGINT or SIGTERM, leave anyway after this many seconds if the app has
    not ended by then (for a console, which has nothing to close but its own connection).
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_quit_signal() -> None:
        if quit_deadline is not None:
            leave_anyway_after(quit_deadline)
        call_later(quit)

    handlers: list[tuple[signal.Signals, Callable[[], object]]] = [(signum, on_quit_signal) for signum in QUIT_SIGNALS]
    handlers.append((signal.SIGHUP, lambda: call_later(hang_up)))
    if reload is not None:
        handlers.append((signal.SIGUSR1, lambda: call_later(reload)))
    for signum, handler in handlers:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signum, handler)
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


def leave_anyway_after(seconds: float) -> None:
    """End the process in ``seconds`` unless it has ended by then (a daemon thread: a clean exit is not held up)."""
    timer = threading.Timer(seconds, os._exit, args=(1,))
    timer.daemon = True
    timer.start()
