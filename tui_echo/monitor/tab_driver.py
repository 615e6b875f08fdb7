"""Textual's web driver for a console in a browser tab (``tui-echo web``): it ends with its tab and its web server,
whatever the stage of its start-up, and never lays out in a loop.

- **Sizes in the order sent.** Textual's web driver queues the start-up size
  (from ``COLUMNS``/``ROWS``) through the event loop, then starts the thread that
  reads textual-serve's ``resize`` messages and posts them at once. A tab that
  sends its real size early (chromium does, within milliseconds) had it reach
  the app *before* the stale start-up size: the app then held two resize events
  of different sizes, the screen laid itself out at one, then at the other, and
  each layout queued a resize to the other size. With a repaint queued between
  them they never merged, and once the app had begun to quit (updates held in a
  batch for good) it looped there at full CPU, drawing nothing and deaf to quit
  and SIGTERM. Here every resize goes through the event loop the same way, so
  they arrive in the order sent and the last one wins.
- **Gone means gone.** The tab closed (``quit``), or the web server went away
  without a word (the end of stdin): the app is asked to exit, and the process
  leaves anyway ``signals.LEAVE_DEADLINE`` seconds later if it has not.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events, messages
from textual.drivers.web_driver import WebDriver
from textual.geometry import Size

from tui_echo.monitor import signals


class TabDriver(WebDriver):
    _app_loop: asyncio.AbstractEventLoop | None = None

    def start_application_mode(self) -> None:
        self._app_loop = asyncio.get_running_loop()
        super().start_application_mode()

    def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
        if packet_type == "resize" and self._app_loop is not None:
            width, height = payload["width"], payload["height"]
            if isinstance(width, int) and isinstance(height, int):
                self._size = (width, height)
                size = Size(width, height)
                # The same road as the driver's start-up size (a coroutine run by the loop): so, after it.
                asyncio.run_coroutine_threadsafe(self._post(events.Resize(size, size)), self._app_loop)
            return
        if packet_type == "quit":
            signals.leave_anyway_after(signals.LEAVE_DEADLINE)  # the tab closed
        super().on_meta(packet_type, payload)

    async def _post(self, message: Any) -> None:
        self._app.post_message(message)

    def run_input_thread(self) -> None:
        super().run_input_thread()  # returns at the end of stdin, or once the app stops the driver
        if not self.exit_event.is_set():  # the end of stdin: the web server is gone
            signals.leave_anyway_after(signals.LEAVE_DEADLINE)
        self._app.post_message(messages.ExitApp())  # ignored by an app that is already closing
