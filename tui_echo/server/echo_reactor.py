"""The plain echo's readiness loop: every plain-socket echo client's chunks, echoed from one task per server.

Each client keeps its own task (its lifecycle, kicks, faults, operator sends,
slow writes), but while nothing needs it, that task is parked here and its
socket sits in one level-triggered epoll set of the server's. One trio task
(a system task, alive while any client is parked) waits for that set to be
readable, then for each ready socket: one recv, the counts, one send, and
the event. It yields once per round of ready sockets, not once per chunk,
and a socket's readiness costs no re-arm (trio's own waits are one-shot:
each one re-arms epoll and parks and wakes a task). This is what an asyncio
event loop does with a protocol; per message it costs about a third of the
CPU of a task per chunk (README, Performance).

A client's task is woken with what it must do itself:
- ``CLOSED``: the client closed; ``MOVED``: its transport changed (faults);
- ``Write``: a chunk to echo under its write lock (an operator send is being
  written), or the rest of one (the client reads slower than it writes);
- a socket error, raised in the task as its own recv or send would have.

Data events: one per chunk, or, with ``data_event_rate`` and no console
attached, as each client's sample allows (a token bucket kept as the time
of its next token), plus the last chunk left out once the client has sent
nothing for ``PAUSE_SECONDS``: the consumers' running totals catch up with
a client that went quiet.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from enum import Enum, auto
from typing import Any, NamedTuple

import outcome
import trio

from tui_echo.ratelimit import TokenTimes
from tui_echo.server.clients import ClientState
from tui_echo.server.connection import Connection
from tui_echo.server.context import Context
from tui_echo.server.events import EVENT_DATA_BYTES
from tui_echo.server.transport import PlainTransport

MAX_EVENTS = 1024  # ready sockets handled per round, before the others' turn
PAUSE_SECONDS = 0.1  # a sampled client quiet this long gets the event of the last chunk left out


class Woken(Enum):
    CLOSED = auto()
    MOVED = auto()


class Write(NamedTuple):
    """A chunk, counted in, whose echo the client's task must write (``rest``: what is left of it)."""

    rest: bytes | memoryview
    chunk: bytes
    messages: int
    now: float  # trio clock


class _Parked:
    """One client waiting in the readiness loop, and its data events' sample."""

    __slots__ = ("conn", "transport", "state", "task", "next_event", "unsent", "unsent_size", "unsent_messages", "at")

    def __init__(self, conn: Connection, transport: PlainTransport, task: trio.lowlevel.Task) -> None:
        self.conn = conn
        self.transport = transport
        self.state: ClientState = conn.state
        self.task = task
        self.next_event = TokenTimes.FULL  # trio clock: the sample's next token (compared inline: see TokenTimes)
        self.unsent: bytes | None = None  # the start of the last chunk the sample left out
        self.unsent_size = self.unsent_messages = 0
        self.at = 0.0  # trio clock: that chunk's arrival


class EchoReactor:
    def __init__(self, context: Context) -> None:
        self._context = context
        self._parked: dict[int, _Parked] = {}  # fd -> client
        self._unsent: dict[int, _Parked] = {}  # fd -> a client whose sample left its last chunk out
        # Made with the server, not with its first client: a server out of file descriptors still echoes
        # those it has (its fd closes with the server, when the garbage collector takes this)
        self._epoll = select.epoll()
        self._running = False
        rate = context.config.data_event_rate
        self._sample = None if rate is None else TokenTimes(rate, rate)  # bursts of ``rate``

    async def serve(self, conn: Connection, transport: PlainTransport) -> Woken | Write:
        """Park the client's task until the loop needs it: see the module's docstring."""
        fd = transport.sock.fileno()
        self._epoll.register(fd, select.EPOLLIN)
        self._parked[fd] = _Parked(conn, transport, trio.lowlevel.current_task())
        if not self._running:
            self._running = True
            trio.lowlevel.spawn_system_task(self._run, name=f"echo readiness loop {id(self):x}")

        def abort(_: Callable[[], Any]) -> trio.lowlevel.Abort:  # cancelled (a kick): leave the set
            self._forget(fd)
            return trio.lowlevel.Abort.SUCCEEDED

        woken: Woken | Write = await trio.lowlevel.wait_task_rescheduled(abort)
        return woken

    def _forget(self, fd: int) -> _Parked:
        parked = self._parked.pop(fd)
        self._unsent.pop(fd, None)
        self._epoll.unregister(fd)
        return parked

    def _wake(self, fd: int, result: outcome.Outcome[Any]) -> None:
        parked = self._forget(fd)
        if parked.unsent is not None:
            self._publish_unsent(parked)
        trio.lowlevel.reschedule(parked.task, result)

    async def _run(self) -> None:
        epoll = self._epoll
        poll = epoll.poll
        clock = trio.current_time
        catch_up_at = 0.0
        try:
            while self._parked:
                ready = poll(0, MAX_EVENTS)
                now = clock()
                if ready:
                    self._echo(ready, now)
                if self._unsent and now >= catch_up_at:
                    self._catch_up(now)
                    catch_up_at = now + PAUSE_SECONDS / 2
                if ready:
                    await trio.lowlevel.checkpoint()  # the others' turn: accept, consoles, commands, the log
                elif self._unsent:
                    with trio.move_on_at(catch_up_at):
                        await trio.lowlevel.wait_readable(epoll)
                else:
                    await trio.lowlevel.wait_readable(epoll)
        finally:
            self._running = False  # the last client left (or the run ends): the next client starts it again

    def _echo(self, ready: list[tuple[int, int]], now: float) -> None:
        """One recv, the counts, one send and the event for each ready socket (the names it uses are locals)."""
        context = self._context
        parked_of = self._parked
        outbox = context.outbox
        size = context.config.recv_size
        line_framing = context.line_framing
        at = now + context.clock.offset
        sample = None if outbox.subscribers else self._sample
        for fd, _ in ready:
            parked = parked_of[fd]
            conn, transport = parked.conn, parked.transport
            try:
                if conn.transport is not transport:  # faults set: the fault-aware loop takes over
                    self._wake(fd, outcome.Value(Woken.MOVED))
                    continue
                sock = transport.sock
                try:
                    data = sock.recv(size)
                except BlockingIOError:
                    continue
                if not data:
                    self._wake(fd, outcome.Value(Woken.CLOSED))
                    continue
                state = parked.state
                length = len(data)
                messages = data.count(b"\n") if line_framing else 1
                state.last_activity = at
                state.bytes_in += length
                state.messages_in += messages
                if conn.write_lock.locked():  # an operator send is being written: the task queues behind it
                    self._wake(fd, outcome.Value(Write(data, data, messages, now)))
                    continue
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                state.bytes_out += sent
                if sent < length:  # the client reads slower than it writes: its task waits for it
                    self._wake(fd, outcome.Value(Write(memoryview(data)[sent:], data, messages, now)))
                    continue
            except Exception as exc:  # a socket error (or a bug): raised in the client's own task
                self._wake(fd, outcome.Error(exc))
                continue
            if sample is not None:
                if now < parked.next_event:
                    parked.unsent = data if length <= EVENT_DATA_BYTES else data[:EVENT_DATA_BYTES]
                    parked.unsent_size, parked.unsent_messages, parked.at = length, messages, now
                    self._unsent[fd] = parked
                    continue
                parked.next_event = sample.after_take(parked.next_event, now)
                if parked.unsent is not None:
                    parked.unsent = None
                    del self._unsent[fd]
            context.publish(state, data, messages, now)

    def _catch_up(self, now: float) -> None:
        """The event of the last chunk left out, for each sampled client that has been quiet since."""
        for fd, parked in list(self._unsent.items()):
            if now - parked.at >= PAUSE_SECONDS:
                del self._unsent[fd]
                self._publish_unsent(parked)

    def _publish_unsent(self, parked: _Parked) -> None:
        unsent, parked.unsent = parked.unsent, None
        if unsent is not None:
            self._context.publish(parked.state, unsent, parked.unsent_messages, parked.at, size=parked.unsent_size)
