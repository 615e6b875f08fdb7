"""``tui-echo replay FILE``: the monitor fed from a recording, through the same ``ServerSource`` as a live server.

``ReplaySource`` plays a ``Playback`` at a speed, against the monotonic clock:
the table, the feed, the stats and the client screens see the events and the
counts the live server had at each moment. ``ReplayApp`` is the monitor with
the replay's keys on its main screen: ``p`` pauses the replay, ``←``/``→``
seek by 10 s, ``[``/``]`` halve and double the speed, and a position bar
shows where it is. What acts on a live server (kick, ban, send, stop) is off,
and the footer and help say so. No trio here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from tui_echo.monitor.app import MonitorApp
from tui_echo.monitor.models.table import TableModel
from tui_echo.monitor.models.table_view import TableView
from tui_echo.monitor.screens.main import MainScreen
from tui_echo.net import Peer
from tui_echo.recording.playback import Playback
from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import ClientState
from tui_echo.server.commands import ServerCommand
from tui_echo.server.config import Mode
from tui_echo.server.events import ServerEvent, ServerTotals
from tui_echo.server.rules import RuleHits

SEEK_SECONDS = 10.0
SPEEDS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
OFF = "off in replay: this is a recording, not a server"
BAR_CELLS = 30


class ReplaySource:
    """A ServerSource that plays a recording; the position moves with the clock times the speed unless paused."""

    def __init__(
        self, playback: Playback, name: str, *, speed: float = 1.0, clock: Callable[[], float] = time.monotonic
    ):
        self.playback = playback
        self.name = name
        self.speed = speed
        self.paused = False
        self._clock = clock
        self._anchor = (clock(), playback.position)  # (clock, position) the position moves on from
        self._waiting: list[ServerEvent] = []
        self.seeks = 0  # how many seeks so far: each skips the connects and disconnects in between

    # ---- the position -------------------------------------------------------------------------

    def now(self) -> float:
        """Where the replay is (the recording's wall clock): the monitor's clock in replay."""
        if self.paused or self.playback.finished:
            return self.playback.position
        since, position = self._anchor
        return min(position + (self._clock() - since) * self.speed, self.playback.span.end)

    def _re_anchor(self) -> None:
        self._anchor = (self._clock(), self.playback.position)

    def toggle_pause(self) -> None:
        self._catch_up()
        self.paused = not self.paused
        self._re_anchor()

    def seek(self, seconds: float) -> None:
        """Move by ``seconds`` of the recording (back or forth); the events skipped over are not shown."""
        self._catch_up()
        self.playback.seek(self.playback.position + seconds)
        self._waiting.clear()
        self.seeks += 1
        self._re_anchor()

    def seek_to(self, position: float) -> None:
        self.seek(position - self.playback.position)

    def change_speed(self, faster: bool) -> None:
        self._catch_up()
        index = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.speed = SPEEDS[min(index + 1, len(SPEEDS) - 1) if faster else max(index - 1, 0)]
        self._re_anchor()

    def _catch_up(self) -> None:
        self._waiting += self.playback.advance(self.now())

    # ---- ServerSource ---------------------------------------------------------------------------

    @property
    def addresses(self) -> tuple[Peer, ...]:
        return self.playback.addresses

    @property
    def mode(self) -> Mode:
        return self.playback.config.mode

    @property
    def origin(self) -> str:
        return f"replay of {self.name}"

    def start(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        self._re_anchor()

    def take_events(self, limit: int) -> list[ServerEvent]:
        self._catch_up()
        taken, self._waiting = self._waiting[:limit], self._waiting[limit:]
        return taken

    def clients(self) -> Iterable[ClientState]:
        return self.playback.clients()

    def totals(self) -> ServerTotals:
        return self.playback.totals()

    def bans(self) -> Sequence[ActiveBan]:
        return ()

    def rules(self) -> Sequence[RuleHits]:
        return ()

    def send(self, command: ServerCommand) -> bool:
        return False  # nothing to act on: the screen says so before it would ask

    async def stop(self) -> None:
        return None


def position_text(source: ReplaySource) -> str:
    span = source.playback.span
    at = source.now() - span.start
    whole = max(span.seconds, 1e-9)
    filled = round(BAR_CELLS * min(at / whole, 1.0))
    state = "end" if source.playback.finished else "paused" if source.paused else f"▶ {source.speed:g}x"
    return (
        f"replay {state}  {_clock(at)} / {_clock(span.seconds)}  {'█' * filled}{'─' * (BAR_CELLS - filled)}"
        f"  p pause · ←/→ {SEEK_SECONDS:g} s · [ ] speed"
    )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


class ReplayMainScreen(MainScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "replay_pause", "Pause", tooltip="Pause or resume the replay"),
        Binding("left", "seek(-1)", f"−{SEEK_SECONDS:g} s", key_display="←", priority=True),
        Binding("right", "seek(1)", f"+{SEEK_SECONDS:g} s", key_display="→", priority=True),
        Binding("left_square_bracket", "speed(0)", "Slower", key_display="["),
        Binding("right_square_bracket", "speed(1)", "Faster", key_display="]"),
        Binding("k", "off('Kick')", "Kick: off", tooltip=OFF),
        Binding("K", "off('Kick all')", "Kick all: off", show=False, tooltip=OFF),
        Binding("b", "off('Ban')", "Ban: off", show=False, tooltip=OFF),
        Binding("s", "off('Send')", "Send: off", show=False, tooltip=OFF),
        Binding("q", "app.quit", "Quit"),
    ]

    @property
    def replay(self) -> ReplaySource:
        source = self._server
        assert isinstance(source, ReplaySource)
        return source

    def on_mount(self) -> None:
        self.mount(Static(position_text(self.replay), id="replay-position"), before=self.query_one(Footer))
        super().on_mount()

    _seeks_shown = 0

    def tick(self) -> None:
        if self.replay.seeks != self._seeks_shown:
            # A seek skipped the disconnects (and connects) in between: the rows start again from the
            # clients at the new position, or a client gone by then would stay, or one back would show gone.
            self._seeks_shown = self.replay.seeks
            self._table_model = TableModel()
            self._table.view = TableView(self._table_model)
            self._next_refresh = 0.0  # read the clients in this tick, not at the next refresh
        super().tick()
        for bar in self.query("#replay-position").results(Static):
            bar.update(position_text(self.replay))

    def command(self, command: ServerCommand) -> None:
        self.notify(f"{type(command).__name__}: {OFF}.", title="Replay", severity="warning")

    def action_replay_pause(self) -> None:
        self.replay.toggle_pause()
        self.tick()

    def action_seek(self, direction: int) -> None:
        self.replay.seek(direction * SEEK_SECONDS)
        self.tick()

    def action_speed(self, faster: int) -> None:
        self.replay.change_speed(bool(faster))
        self.tick()

    def action_off(self, what: str) -> None:
        self.notify(f"{what}: {OFF}.", title="Replay", severity="warning")


class ReplayApp(MonitorApp):
    MAIN_SCREEN = ReplayMainScreen
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, source: ReplaySource, *, feed_lines: int, handle_signals: bool = True) -> None:
        super().__init__(
            source,
            feed_lines=feed_lines,
            clock=source.now,
            handle_signals=handle_signals,
            started_at=source.playback.span.start,
        )
        self.title = f"tui-echo · replay of {source.name}"

    async def action_quit(self) -> None:
        self.quitting = True
        self.exit()
