"""The trio server as a guest in the monitor's asyncio event loop, in one thread.

Trio's guest mode interleaves trio's scheduler with the host loop's callbacks.
Because both run on one thread, the host may call trio's synchronous channel
methods (``send_nowait``, ``receive_nowait``) directly: trio wakes itself when
they reschedule a task. No Textual here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

import trio

from tui_echo.control.listener import ControlSettings
from tui_echo.net import Peer
from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import ClientState
from tui_echo.server.commands import ServerCommand, Shutdown
from tui_echo.server.config import Mode, ServerConfig
from tui_echo.server.events import ServerEvent, ServerTotals
from tui_echo.server.rules import RuleHits
from tui_echo.recording.writer import RecordSettings
from tui_echo.service import Service

if TYPE_CHECKING:
    import outcome

STOP_GRACE_SECONDS = 3.0  # a clean stop takes under a second: clients linger 0.5 s at shutdown
MONITOR_EVENT_BUFFER = 512  # the feed shows at most 400 data lines a second: more events would only cost CPU
HOST_FIRST_SECONDS = 0.05  # how long trio's next batch waits at most while the host loop has work ready
HOST_TIMER_SECONDS = 0.02  # after the host worked, a timer due this soon (its repaint: 1/60 s) is waited for


class GuestServer:
    """A ``ServerSource`` (see ``tui_echo.monitor.source``): ``listen()`` first, then ``start()`` inside the loop."""

    def __init__(
        self,
        config: ServerConfig,
        control: ControlSettings | None = None,
        listeners: list[socket.socket] | None = None,
        record: RecordSettings | None = None,
    ) -> None:
        buffer = min(config.event_buffer, MONITOR_EVENT_BUFFER)
        self._service = Service(config, event_buffer=buffer, control=control, listeners=listeners, record=record)
        self._server = self._service.server
        self._events = self._service.events
        self._scope: trio.CancelScope | None = None
        self._done: asyncio.Future[None] | None = None

    @property
    def addresses(self) -> tuple[Peer, ...]:
        return self._server.addresses

    def listen(self) -> tuple[Peer, ...]:
        """Bind now (and open the control socket), so that the command line can report a busy port
        before the screen opens."""
        return self._service.listen()

    @property
    def mode(self) -> Mode:
        return self._server.config.mode

    @property
    def origin(self) -> str:
        path = self._service.control_path
        return f"control {path}" if path else ""

    def start(self, on_stopped: Callable[[BaseException | None], None]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._done = done

        def finished(result: outcome.Outcome[None]) -> None:
            try:
                result.unwrap()
                error = None
            except BaseException as exc:  # handed to the app, which shows it and exits
                error = exc
            if not done.done():
                done.set_result(None)
            on_stopped(error)

        trio.lowlevel.start_guest_run(
            self._run,
            # Both ways in: after trio's I/O wait (from its thread) and after a batch that left work.
            run_sync_soon_threadsafe=lambda callback: loop.call_soon_threadsafe(run_when_host_idle, loop, callback),
            run_sync_soon_not_threadsafe=partial(run_when_host_idle, loop),
            done_callback=finished,
            host_uses_signal_set_wakeup_fd=True,
        )

    async def _run(self) -> None:
        with trio.CancelScope() as self._scope:
            await self._service.serve()

    def take_events(self, limit: int) -> list[ServerEvent]:
        events: list[ServerEvent] = []
        try:
            while len(events) < limit:
                events.append(self._events.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            pass
        return events

    def clients(self) -> Iterator[ClientState]:
        return self._server.clients()

    def totals(self) -> ServerTotals:
        return self._server.totals()

    def bans(self) -> tuple[ActiveBan, ...]:
        return self._server.bans()

    def rules(self) -> tuple[RuleHits, ...]:
        return self._server.rules()

    def send(self, command: ServerCommand) -> bool:
        return self._server.command_nowait(command)

    async def stop(self) -> None:
        done = self._done
        if done is None or done.done():
            return
        if not self.send(Shutdown()):
            self._server.stop()
        # A monitor that quits shows no more events: the stop need not wait for it to take one
        # `disconnected` per client (10,000 of them at the default cap) through its ticks.
        self._events.close()
        try:
            await asyncio.wait_for(asyncio.shield(done), STOP_GRACE_SECONDS)
        except TimeoutError:
            if self._scope is not None:
                self._scope.cancel()  # stuck: stop without the clean close
            await done


def run_when_host_idle(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
    """Schedule trio's next batch (``callback``): it runs once the host loop has nothing else ready, or
    HOST_FIRST_SECONDS from now, whichever comes first; never before this returns (trio asks from inside
    its batch).

    A batch of trio tasks (one echo per busy client) takes 10-40 ms at 1,000 clients, and a keypress crosses
    several of Textual's tasks before it shows (the app, the focused widget, its parents, the screen's
    repaint), each a loop turn later: with a batch between any two of them, a key waited for several.
    """
    loop.call_soon(_run_if_host_idle, loop, callback, loop.time() + HOST_FIRST_SECONDS)


def _run_if_host_idle(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], object], deadline: float, worked: bool = False
) -> None:
    now = loop.time()
    if now < deadline:
        if host_has_work(loop):
            loop.call_soon(_run_if_host_idle, loop, callback, deadline, True)  # behind what is ready now
            return
        due = next_timer(loop)
        if worked and due is not None and due - now < HOST_TIMER_SECONDS:
            # The host just worked (a key crossing its widgets, a tick): its repaint comes within a frame,
            # on a timer. Wait for it too, asleep; an idle host's timers do not hold trio.
            loop.call_at(due, _run_if_host_idle, loop, callback, deadline, True)
            return
    callback()


def host_has_work(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether callbacks other than the caller are ready to run in the host loop (Textual's tasks, a key from
    the terminal). asyncio's private ``BaseEventLoop._ready`` (README: Private APIs we rely on): no public API
    tells; a loop without it is taken to have none, and trio runs at once."""
    return bool(getattr(loop, "_ready", None))


def next_timer(loop: asyncio.AbstractEventLoop) -> float | None:
    """When the host loop's next timer is due (in ``loop.time()``), if it has one: asyncio's private
    ``BaseEventLoop._scheduled`` (README: Private APIs we rely on)."""
    scheduled = getattr(loop, "_scheduled", None)
    return float(scheduled[0].when()) if scheduled else None
