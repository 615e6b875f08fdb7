"""The monitor attached to a running server (``tui-echo attach``): the same app, with a remote source.

What differs from the in-process monitor: ``q`` detaches (the server and its
clients carry on), stopping the server is its own action behind a
confirmation, the uptime is the server's, and a server that goes away is a
message with an offer to reattach, not an error. No trio here.
"""

from __future__ import annotations

from dataclasses import replace

from pathlib import Path
from typing import Protocol

from textual.binding import Binding
from textual.driver import Driver
from textual.drivers.web_driver import WebDriver

from tui_echo.client_keys import ClientKeys
from tui_echo.control.client import Connection
from tui_echo.monitor import signals
from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.fleet import FleetSource
from tui_echo.monitor.remote import RemoteSource
from tui_echo.monitor.source import ServerSource
from tui_echo.monitor.screens.confirm import ConfirmScreen
from tui_echo.monitor.screens.main import MainScreen
from tui_echo.monitor.tab_driver import TabDriver
from tui_echo.server.commands import Shutdown


class AttachedSource(ServerSource, Protocol):
    """A server over its control socket (``RemoteSource``), or a --workers server over its workers'
    sockets, or several separate servers (``FleetSource``)."""

    stopped_by_server: bool

    @property
    def name(self) -> str:
        """``pid 4242``, ``2 workers``, ``3 servers``: for the title and messages."""
        ...

    @property
    def keys(self) -> ClientKeys: ...

    @property
    def pid(self) -> int: ...
    @property
    def started_at(self) -> float: ...
    @property
    def path(self) -> Path: ...
    @property
    def gone_reason(self) -> str: ...
    def reconnect(self) -> str | None: ...


class ServerGone(ConfirmScreen):
    """The server went away: reattach (``r``, and Enter at once) or quit (``q``)."""

    BINDINGS = [Binding("r", "answer(True)", "Reattach"), Binding("q,escape", "answer(False)", "Quit")]

    def __init__(self, question: str) -> None:
        super().__init__(question, "Reattach", "Quit", default=True)


class AttachedMainScreen(MainScreen):
    # q in its place in the footer, after the kicks. The footer cuts what does not fit from its end, where
    # the app's "S Stop server" comes: the feed's f and x (in ?, the palette) make room for it.
    BINDINGS = [
        Binding("q", "app.quit", "Detach"),
        *(
            replace(binding, show=False)
            for binding in MainScreen.BINDINGS
            if isinstance(binding, Binding) and binding.key in ("f", "x")
        ),
    ]


class AttachedApp(MonitorApp):
    MAIN_SCREEN = AttachedMainScreen
    RELOADS_ON_SIGUSR1 = False
    BINDINGS = [
        Binding("q", "quit", "Detach"),
        Binding("ctrl+q", "quit", "Detach", show=False, priority=True),
        Binding("ctrl+c", "quit", "Detach", show=False, priority=True),
        Binding("S", "stop_server", "Stop server"),
    ]

    def __init__(self, server: AttachedSource, *, feed_lines: int, handle_signals: bool = True) -> None:
        # The server's uptime, not this console's.
        super().__init__(
            server, feed_lines=feed_lines, handle_signals=handle_signals, started_at=server.started_at, keys=server.keys
        )
        self.remote = server
        self._asked_to_stop = False
        self.title = f"tui-echo · attached to {server.name}"

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        return TabDriver if driver is WebDriver else driver  # in a browser tab: quit with the tab and web server

    def quit_deadline(self) -> float | None:
        # In a browser tab there is no terminal to restore: answer SIGTERM even if the app is stuck.
        return signals.LEAVE_DEADLINE if self.driver_class is TabDriver else None

    async def action_quit(self) -> None:
        """Detach: the server and its clients carry on."""
        if self.quitting:
            return
        self.quitting = True
        await self.remote.stop()
        several = self.remote.keys.several
        self.exit(message=f"detached from {self.remote.name}; the server{'s carry' if several else ' carries'} on")

    def action_stop_server(self) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self._asked_to_stop = True
                self.main.command(Shutdown())

        if self.remote.keys.several:
            names = ", ".join(self.remote.keys.names)
            question = f"Stop all {self.remote.name} ({names})? Every client is disconnected, and each exits."
        else:
            question = f"Stop the server ({self.remote.name})? Every client is disconnected, and it exits."
        self.push_screen(ConfirmScreen(question, "Stop server", "Cancel"), answer)

    def server_stopped(self, error: BaseException | None) -> None:
        if self.quitting:
            return
        if self.remote.stopped_by_server and self._asked_to_stop:
            self.main.tick()  # the last events: the kick, the "stopped"
            self.quitting = True
            self.exit(message=f"the server ({self.remote.name}) stopped")
            return
        what = "stopped" if self.remote.stopped_by_server else "went away"
        self.main.server_gone(what)  # the last events, and the stats bar says so and stops counting
        reason = self.remote.gone_reason
        if self.remote.keys.several:
            question = f"Every server ({', '.join(self.remote.keys.names)}) {what} ({reason})."
        else:
            question = f"The server {what} ({reason}).\n{self.remote.path}"
        self.push_screen(ServerGone(question), self._reattach)

    def _reattach(self, reattach: bool | None) -> None:
        if not reattach:
            self.quitting = True
            self.exit(message=f"the server at {self.remote.path} is gone")
            return
        error = self.remote.reconnect()
        if error is not None:
            self.push_screen(ServerGone(f"Still not attached: {error}"), self._reattach)
            return
        self.remote.start(self.server_stopped)
        self.main.server_back(self.remote.started_at)
        self.title = f"tui-echo · attached to {self.remote.name}"
        self.notify(f"Attached again to {self.remote.name}.")


def open_attached(servers: list[list[Path]], names: list[str] | None = None) -> AttachedSource:
    """The source of one server (its socket, or each worker's of a --workers server) or of several
    separate servers, each named (``names``: their ports or sockets' names); raises ConsoleError, with
    nothing left attached, if one cannot be attached to."""
    if len(servers) > 1:
        return FleetSource.open_servers(servers, names or [str(place + 1) for place in range(len(servers))])
    paths = servers[0]
    return RemoteSource(Connection.open(paths[0], events=True)) if len(paths) == 1 else FleetSource.open(paths)


def run_attached(servers: list[list[Path]], feed_lines: int, names: list[str] | None = None) -> int:
    """Attach to the servers (see ``open_attached``); raises ConsoleError before the screen opens if it cannot."""
    app = AttachedApp(open_attached(servers, names), feed_lines=feed_lines)
    app.run()
    return app.return_code or 0
