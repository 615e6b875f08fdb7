"""The monitor app: the server's live view, and the operator's controls over it.

The app composes nothing but screens. It owns the server's lifetime (it starts
the ``ServerSource`` it is given, and stops it, closing every client, however
the app ends), the signals, quitting and help; it routes what the screens
above the main one ask for (a send, a kick, a lifted ban, a save) to the
main screen or does it. What the operator sees and does is on the screens:
``screens/main.py`` (the stats, the table, the feed, the send box), a client's
own screen, the bans, the rules, help.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tui_echo.monitor import signals
from tui_echo.monitor.gc_pace import GcPace
from tui_echo.monitor.models.feed import FeedEntry
from tui_echo.client_keys import ONE_SERVER, ClientKeys
from tui_echo.monitor.models.feed_export import ExportFormat, write_export
from tui_echo.monitor.screens.bans import BansScreen
from tui_echo.monitor.screens.client_detail import ClientScreen
from tui_echo.monitor.screens.help import HelpScreen
from tui_echo.monitor.screens.main import HELP_HELP, MainScreen
from tui_echo.monitor.screens.saving import SaveRequested
from tui_echo.monitor.source import ServerSource
from tui_echo.net import describe_error
from tui_echo.server.commands import Kick, Reload, SendTo, Unban
from tui_echo.server.config import DEFAULT_FEED_LINES
from tui_echo.text import plural

PALETTE_CLOSE_SECONDS = 1 / 60  # the screen held as the command palette closes (Textual: 50 ms)
GC_TICK_SECONDS = 0.5  # how often the collector's pace is looked at (gc_pace.py)


@runtime_checkable
class OffersCommands(Protocol):
    """A screen with palette commands of its own (the main screen, a client's screen)."""

    def system_commands(self) -> Iterable[SystemCommand]: ...


class MonitorApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tui-echo"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (80, "-wide")]  # the screen's class, for app.tcss
    MAIN_SCREEN: ClassVar[type[MainScreen]] = MainScreen
    RELOADS_ON_SIGUSR1: ClassVar[bool] = True  # the server's own process; an attached console leaves it to ctl
    # The keys of every screen; each screen adds its own (the main screen's are most of them).
    BINDINGS = [
        Binding("q", "quit", "Stop & quit"),  # attached (tui-echo attach), q detaches instead
        Binding("question_mark", "help", "Help", key_display="?", tooltip=HELP_HELP),
        Binding("f1", "help", "Help", show=False, tooltip=HELP_HELP),
        Binding("ctrl+q", "quit", "Stop & quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Stop & quit", show=False, priority=True),
    ]

    def __init__(
        self,
        server: ServerSource,
        *,
        feed_lines: int = DEFAULT_FEED_LINES,
        clock: Callable[[], float] = time.time,
        handle_signals: bool = True,
        started_at: float | None = None,
        keys: ClientKeys = ONE_SERVER,
    ) -> None:
        """``started_at``: when the server started, for its uptime; by default, now. ``keys``: how the
        console names clients (``#12@7002`` among several servers, ``client_keys``)."""
        super().__init__()
        self.server = server
        self.clock = clock
        self.save_dir: Path | None = None  # where saved feeds go; None: the current directory at the time
        self.quitting = False  # set once the app is on its way out: the server's end is no surprise then
        self._handle_signals = handle_signals
        self._remove_signal_handlers: Callable[[], None] | None = None
        self._gc_pace = GcPace()  # thousands of clients' objects: see gc_pace.py
        started = clock() if started_at is None else started_at
        self.main = self.MAIN_SCREEN(server, feed_lines=feed_lines, clock=clock, started_at=started, keys=keys)

    def get_default_screen(self) -> MainScreen:
        return self.main

    def delay_update(self, delay: float = 0.05) -> None:
        """Hold the screen a frame, not Textual's 50 ms, as the command palette closes: Textual masks the
        time a command takes to show its effect; here a command's effect is ready within a frame (a go-to
        among 10,000 clients: under 3 ms), and the 50 ms were half the go-to's time before it showed."""
        super().delay_update(min(delay, PALETTE_CLOSE_SECONDS))

    def on_mount(self) -> None:
        self._gc_pace.start(self._clients_came_and_went())
        self.set_interval(GC_TICK_SECONDS, self._gc_tick)
        if self._handle_signals:
            self._remove_signal_handlers = signals.install(
                self.action_quit,
                self._hang_up,
                self.call_later,
                quit_deadline=self.quit_deadline(),
                reload=(lambda: self.server.send(Reload())) if self.RELOADS_ON_SIGUSR1 else None,
            )
        self.server.start(self.server_stopped)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._gc_pace.key_pressed()  # the collector's long pass waits for the keyboard to rest
        await super().on_event(event)

    def _clients_came_and_went(self) -> int:
        totals = self.server.totals()
        return totals.clients_total + (totals.clients_total - totals.clients_now)

    def _gc_tick(self) -> None:
        self._gc_pace.tick(self._clients_came_and_went())

    def quit_deadline(self) -> float | None:
        """After SIGINT or SIGTERM, leave anyway this many seconds later (None: wait for the clean stop)."""
        return None

    async def on_unmount(self) -> None:
        self.quitting = True
        await self.server.stop()  # closes every client, whichever way the app ends
        if self._remove_signal_handlers is not None:
            self._remove_signal_handlers()
        self._gc_pace.stop()

    async def _hang_up(self) -> None:
        self.quitting = True
        await signals.leave_after_hang_up(self.server.stop)

    def server_stopped(self, error: BaseException | None) -> None:
        """The server ended by itself (``error``: why, if it failed)."""
        if self.quitting:
            return
        # Not a user error: a bug. Keep the traceback for the report.
        detail = "" if error is None else ":\n" + "".join(traceback.format_exception(error))
        self.exit(return_code=1, message=f"tui-echo: error: the server stopped unexpectedly{detail}")

    async def action_quit(self) -> None:
        if self.quitting:
            return
        self.quitting = True
        self.notify("Closing every client…", timeout=2)
        await self.server.stop()
        self.exit()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.screen))

    # ---- what the other screens ask for ------------------------------------

    @on(ClientScreen.SendRequested)
    def _send_to_one(self, event: ClientScreen.SendRequested) -> None:
        self.main.command(SendTo(event.client_id, event.data))

    @on(ClientScreen.KickRequested)
    def _kick_one(self, event: ClientScreen.KickRequested) -> None:
        self.main.command(Kick(event.client_id))

    @on(BansScreen.LiftRequested)
    def _lift_ban(self, event: BansScreen.LiftRequested) -> None:
        self.main.command(Unban(event.address))

    @on(SaveRequested)
    def _save(self, event: SaveRequested) -> None:
        # In a thread: 100000 lines take seconds to format as JSON, and the server shares the event loop.
        at = self.clock()
        self.run_worker(
            lambda: self._write_file(event.entries, event.kind, event.subject, event.what, at),
            thread=True,
            exit_on_error=False,
        )

    def _write_file(
        self, entries: tuple[FeedEntry, ...], kind: ExportFormat, subject: str, what: str, at: float
    ) -> None:
        try:
            directory = self.save_dir or Path.cwd()  # the current directory may have been removed
            path = write_export(entries, kind, directory, subject, at, self.main.keys)
        except OSError as error:  # a read-only directory, a full disk: the feed stays as it was
            where = f"{error.filename}: " if error.filename else ""
            message = f"{where}{describe_error(error)}"
            self.call_from_thread(self.notify, message, title="Not saved", severity="error", timeout=10)
            return
        message = f"{what} ({plural(len(entries), 'line')}, {kind.label}) is in {path}"
        self.call_from_thread(self.notify, message, title="Saved", timeout=10)

    # ---- the palette, screenshots ----------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:  # type: ignore[type-arg]
        yield from super().get_system_commands(screen)
        if isinstance(screen, OffersCommands):  # not help, bans or rules: they have nothing to act on
            yield from screen.system_commands()
            yield SystemCommand(
                "Keys and marks",
                "Every key here, and what the feed's marks mean (? or F1)",
                lambda: self.push_screen(HelpScreen(screen)),
            )

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        # Textual's default, ~/Downloads, is missing on most servers: save where the user started
        # tui-echo, or where TEXTUAL_SCREENSHOT_LOCATION says. The notification names the file in full.
        folder = path or os.path.abspath(os.path.expanduser(os.environ.get("TEXTUAL_SCREENSHOT_LOCATION") or "."))
        return super().deliver_screenshot(filename, folder, time_format)
