"""Textual's web driver for a console in a browser tab (``tui-echo web``), which also ends with its web server.

textual-serve tells a tab's process to quit when the tab closes or the web
server stops cleanly. A web server that is killed says nothing: the process
only sees its stdin end. Textual's web driver then stops reading and the app
runs on, attached to the server for good (one of its few console places
taken). This driver quits the app there instead.
"""

from __future__ import annotations

from textual import messages
from textual.drivers.web_driver import WebDriver


class TabDriver(WebDriver):
    def run_input_thread(self) -> None:
        super().run_input_thread()  # returns at the end of stdin, or once the app stops the driver
        self._app.post_message(messages.ExitApp())  # ignored by an app that is already closing
