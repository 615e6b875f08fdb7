"""The monitor attached to a running server (``tui-echo attach``): the same app, with a remote source.

What differs from the in-process monitor: ``q`` detaches (the server and its
clients carry on), stopping the server is its own action behind a
confirmation, the uptime is the server's, and a server that goes away is a
message with an offer to reattach, not an error. No trio here.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.driver import Driver
from textual.drivers.web_driver import WebDriver
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from tui_echo.consoles.connection import Connection
from tui_echo.monitor import signals
from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.models.stats import StatsModel
from tui_echo.monitor.models.table import TableModel
from tui_echo.monitor.remote import RemoteSource
from tui_echo.monitor.tab_driver import TabDriver
from tui_echo.server.commands import Shutdown


class Question(ModalScreen[bool]):
    """A question with two answers: ``y``/Enter on the first button, ``n``/Escape on the second."""

    DEFAULT_CSS = """
    Question { align: center middle; }
    Question > Vertical { width: 70; height: auto; padding: 1 2; border: thick $error; background: $surface; }
    Question #question { width: 1fr; }
    Question Horizontal { height: auto; margin-top: 1; }
    Question Button { margin-right: 2; }
    """
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str, yes: str, no: str, *, yes_key: str = "y", no_key: str = "n") -> None:
        super().__init__()
        self._question = question
        self._yes = f"{yes} ({yes_key})"
        self._no = f"{no} ({no_key})"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._question, id="question")
            with Horizontal():
                yield Button(self._yes, variant="error", id="yes")
                yield Button(self._no, id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ServerGone(Question):
    """The server went away: reattach (``r``) or quit (``q``)."""

    BINDINGS = [Binding("r", "answer(True)", "Reattach"), Binding("q,escape", "answer(False)", "Quit")]

    def __init__(self, question: str) -> None:
        super().__init__(question, "Reattach", "Quit", yes_key="r", no_key="q")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()


class AttachedApp(MonitorApp):
    BINDINGS = [
        Binding("q", "quit", "Detach"),
        Binding("ctrl+q", "quit", "Detach", show=False, priority=True),
        Binding("ctrl+c", "quit", "Detach", show=False, priority=True),
        Binding("S", "stop_server", "Stop server"),
    ]

    def __init__(self, server: RemoteSource, *, feed_lines: int, handle_signals: bool = True) -> None:
        super().__init__(server, feed_lines=feed_lines, handle_signals=handle_signals)
        self.remote = server
        self._stats = StatsModel(
            server.addresses, server.started_at, server.mode
        )  # the server's uptime, not this console's
        self._asked_to_stop = False
        self.title = f"tui-echo · attached to pid {server.pid}"

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        return TabDriver if driver is WebDriver else driver  # in a browser tab: quit with the tab and web server

    def _quit_deadline(self) -> float | None:
        # In a browser tab there is no terminal to restore: answer SIGTERM even if the app is stuck.
        return signals.LEAVE_DEADLINE if self.driver_class is TabDriver else None

    async def action_quit(self) -> None:
        """Detach: the server and its clients carry on."""
        if self._quitting:
            return
        self._quitting = True
        await self.remote.stop()
        self.exit(message=f"detached from pid {self.remote.pid}; the server carries on")

    def action_stop_server(self) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self._asked_to_stop = True
                self._command(Shutdown())

        question = f"Stop the server (pid {self.remote.pid})? Every client is disconnected, and it exits."
        self.push_screen(Question(question, "Stop server", "Cancel"), answer)

    def _server_stopped(self, error: BaseException | None) -> None:
        if self._quitting:
            return
        self._tick()  # the last events: the kick, the "stopped"
        if self.remote.stopped_by_server and self._asked_to_stop:
            self._quitting = True
            self.exit(message=f"the server (pid {self.remote.pid}) stopped")
            return
        what = "stopped" if self.remote.stopped_by_server else "went away"
        reason = self.remote.gone_reason
        self.push_screen(ServerGone(f"The server {what} ({reason}).\n{self.remote.path}"), self._reattach)

    def _reattach(self, reattach: bool | None) -> None:
        if not reattach:
            self._quitting = True
            self.exit(message=f"the server at {self.remote.path} is gone")
            return
        error = self.remote.reconnect()
        if error is not None:
            self.push_screen(ServerGone(f"Still not attached: {error}"), self._reattach)
            return
        self._stats = StatsModel(self.remote.addresses, self.remote.started_at, self.remote.mode)
        self._table_model = TableModel()
        self.remote.start(self._server_stopped)
        self._origin.update(self.remote.origin)
        self._show_mode()
        self.title = f"tui-echo · attached to pid {self.remote.pid}"
        self.notify(f"Attached again to pid {self.remote.pid}.")
        self._soon()


def run_attached(path: Path, feed_lines: int) -> int:
    """Attach to the server at ``path`` (raises ConsoleError before the screen opens if it cannot)."""
    app = AttachedApp(RemoteSource(Connection.open(path, events=True)), feed_lines=feed_lines)
    app.run()
    return app.return_code or 0
