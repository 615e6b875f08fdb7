"""The echo server: listen, serve, stop; the registry of connections, the totals, and the commands.

Knows nothing of any UI, nor of the control socket. The parts it puts
together, each in a module of its own:

- ``admission.py`` accepts, decides who gets in, and runs TLS handshakes;
- ``registry.py`` counts clients in and out;
- ``connection.py`` is one client: its transport (``transport.py``), its
  write lock and timeout, its close;
- ``modes/`` has one handler per ``--mode``, each a loop over one connection
  with a narrow context (outbox, clock, registry, notices);
- ``operator.py`` carries out kick, send, broadcast, ban, unban, and reaps
  idle clients;
- ``outbox.py`` is the bounded event path; ``notices.py`` says things once,
  or summarised.

Commands, whoever issues them (the monitor in-process, a console on the
control socket), enter the same way: through the command channel
(``command_nowait`` or ``await command(...)``), applied in order by one task.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import trio

from tui_echo.server.access import AccessControl, ActiveBan
from tui_echo.server.admission import Admission
from tui_echo.server.binding import open_listeners
from tui_echo.server.clients import ClientState
from tui_echo.server.clock import WallClock
from tui_echo.server.commands import Done, Reload, ServerCommand, Shutdown
from tui_echo.server.config import ServerConfig
from tui_echo.server.context import Context
from tui_echo.net import Peer
from tui_echo.server.events import DisconnectReason, ServerEvent, ServerListening, ServerStopped, ServerTotals
from tui_echo.server.faulting import Faulting
from tui_echo.server.modes import mode_for
from tui_echo.server.answers import RuleAnswers
from tui_echo.server.notices import Notices
from tui_echo.server.operator import Operator
from tui_echo.server.outbox import EventOutbox
from tui_echo.server.registry import Registry
from tui_echo.server.reload import ReloadError, read_settings
from tui_echo.server.rules import RuleBook, RuleHits
from tui_echo.server.subscription import Subscription
from tui_echo.text import plural
from tui_echo.server.tap import RecordSink

STOP_DRAIN_SECONDS = 1.0  # how long a stopping server waits for a stalled consumer


class _Order:
    """A command on its way in, with what the log says of it, and the event its issuer may wait on."""

    __slots__ = ("command", "issued", "done", "result")

    def __init__(self, command: ServerCommand, issued: str, done: trio.Event | None) -> None:
        self.command = command
        self.issued = issued  # logged just before it runs, e.g. "#3 kicked by uid 1000 (pid 42)"; "" for nothing
        self.done = done  # set once it ran, or once the server stopped without running it
        self.result: Done | None = None  # what it did, once it ran


class EchoServer:
    """A multi-client TCP echo server.

    ``listen()`` binds (raising ListenError), ``serve()`` runs until ``stop()``
    or a ``Shutdown`` command, or until cancelled. Events go to ``events``
    (closed when the server stops). ``listeners``: listening sockets to serve
    instead of binding ``config.host``/``config.port`` (systemd's sockets).
    """

    def __init__(
        self,
        config: ServerConfig,
        events: trio.MemorySendChannel[ServerEvent],
        command_buffer: int = 256,
        listeners: list[socket.socket] | None = None,
    ) -> None:
        self.config = config
        self._events = events
        self._outbox = EventOutbox(events, config.lifecycle_backlog)
        self._orders: trio.MemorySendChannel[_Order]
        self._orders, self._orders_in = trio.open_memory_channel(command_buffer)
        self._listeners: list[socket.socket] = []
        self._services_scope: trio.CancelScope | None = None
        self._clock = WallClock()
        self._access = AccessControl(config)
        if config.allow_files or config.deny_files:  # raises ReloadError for a bad file
            start = read_settings(config)
            self._access.set_lists(start.allow, start.deny)
        self._registry = Registry(config, self._access, self._outbox, self._clock)
        self._notices = Notices(self._outbox, self._clock)
        # Reply rules and their hit counts; None without rules (and no rules file a reload could fill), and then
        # the plain echo serves every client.
        context = Context(config, self._outbox, self._clock, self._registry, self._notices)
        has_rules = config.rules or config.rules_files
        self._answers = RuleAnswers(RuleBook(config.rules), context) if has_rules else None
        self._faulting = Faulting(config, self._outbox, self._clock)
        self._admission = Admission(context, self._access, mode_for(context, self._answers), self._faulting)
        self._operator = Operator(context, self._access, self._faulting)
        self.addresses: tuple[Peer, ...] = ()
        self._given = listeners
        self.serving = trio.Event()  # set once it serves (the listening event is out)
        self.stop_requested = trio.Event()  # set by stop(): what systemd hears as STOPPING=1

    # ---- reading state -------------------------------------------------

    def clients(self) -> Iterator[ClientState]:
        """The live clients' state, exact at the moment of reading."""
        return (conn.state for conn in self._registry.connections.values())

    def start_recording(self, sink: RecordSink, lifecycle: Callable[[ServerEvent], None]) -> None:
        """Tap every client that connects from now on into ``sink``, and hand ``lifecycle`` every
        lifecycle event (connects, disconnects, notices, the stop) as it is published."""
        self._admission.recording = sink
        self._outbox.recorders = [lifecycle]

    def stop_recording(self) -> None:
        """New clients are no longer tapped (a tapped client's sink ignores it once closed)."""
        self._admission.recording = None
        self._outbox.recorders = []

    def totals(self) -> ServerTotals:
        clients = self._registry.totals()
        refusals = self._admission.refusals
        return ServerTotals(
            clients_total=clients.clients_total,
            clients_now=clients.clients_now,
            clients_peak=clients.clients_peak,
            refused_total=refusals.total,
            messages_in=clients.messages_in,
            bytes_in=clients.bytes_in,
            bytes_out=clients.bytes_out,
            events_skipped=self._outbox.dropped,
            tls_handshakes_failed=self._admission.tls_failures.total,
            refused_by_reason=dict(refusals.by_reason),
            rule_hits=tuple(self._answers.book.hits) if self._answers is not None else (),
            dropped_out=clients.dropped_out,
            proxy_checks=self._admission.proxy_checks,
        )

    def disconnects(self) -> dict[DisconnectReason, int]:
        """Clients that left since the start, by reason."""
        return dict(self._registry.disconnects)

    def rules(self) -> tuple[RuleHits, ...]:
        """The reply rules in order, each with its exact hit count and last match."""
        return self._answers.book.table() if self._answers is not None else ()

    def bans(self) -> tuple[ActiveBan, ...]:
        """The banned addresses, soonest to end first. A ban whose ``until`` has passed is no longer in force."""
        return tuple(ActiveBan(host, until + self._clock.offset) for host, until in self._access.bans())

    # ---- subscribers (consoles) ----------------------------------------

    def subscribe(self) -> Subscription:
        """A bounded copy of every event from now on (``close()`` it when done).

        Read ``clients()`` and ``totals()`` in the same step, with no checkpoint
        between, and the events continue exactly from that snapshot.
        """
        subscription = Subscription(trio.current_time(), self._outbox.unsubscribe)
        self._outbox.subscribe(subscription)
        return subscription

    def notice(self, message: str) -> None:
        """Tell every consumer something, e.g. that a console was refused."""
        self._notices.say(message)

    # ---- commands --------------------------------------------------------

    def command_nowait(self, command: ServerCommand) -> bool:
        """Queue a command (the monitor's way); False if the queue is full or the server has stopped."""
        try:
            self._orders.send_nowait(_Order(command, "", None))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    async def command(self, command: ServerCommand, *, issued: str = "") -> Done | None:
        """Queue a command and wait until it has run (a console's way): what it did, or None if the server
        stopped first.

        ``issued`` is logged just before it runs ("#3 kicked by uid 1000 (pid 42)"), so that
        the log reads the command, then what it did.
        """
        order = _Order(command, issued, trio.Event())
        try:
            await self._orders.send(order)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return None
        assert order.done is not None
        await order.done.wait()
        return order.result

    async def _command_loop(self) -> None:
        async for order in self._orders_in:
            if order.issued:
                self._notices.say(order.issued)
            order.result = self.apply(order.command)
            if order.done is not None:
                order.done.set()

    def _refuse_orders(self) -> None:
        """The server has stopped: no command runs any more, and nobody waits for one."""
        with self._orders_in:
            while True:
                try:
                    order = self._orders_in.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    return
                if order.done is not None:
                    order.done.set()

    def apply(self, command: ServerCommand) -> Done:
        """Carry out one command now (the command loop calls this for every command queued)."""
        if isinstance(command, Shutdown):
            self.stop()
            return Done()
        if isinstance(command, Reload):
            return self.reload()
        return self._operator.apply(command)

    def reload(self) -> Done:
        """Re-read the access-list and rules files. A bad file changes nothing (one notice says why);
        otherwise the new lists decide from the next connection, the new rules from each client's next
        message, and connected clients now denied are closed (reason ``denied``) unless ``keep_denied``."""
        try:
            settings = read_settings(self.config)
        except ReloadError as exc:
            failed = f"reload failed, the settings in force stay: {exc}"
            self._notices.say(failed)
            return Done(error=failed)
        self._access.set_lists(settings.allow, settings.deny)
        said = [f"{plural(len(settings.allow), 'allowed network')}, {plural(len(settings.deny), 'denied network')}"]
        if self._answers is not None:
            new, gone = self._answers.replace(settings.rules)
            said.append(f"{plural(len(settings.rules), 'rule')} ({new} new, {gone} gone)")
        denied = [c for c in self._registry.connections.values() if not self._access.permitted(c.state.peer[0])]
        if denied and self.config.keep_denied:
            said.append(f"{plural(len(denied), 'client')} now denied left connected (--keep-denied)")
        elif denied:
            for conn in denied:
                conn.kick(DisconnectReason.DENIED)
            said.append(f"{plural(len(denied), 'client')} now denied closed")
        message = "reloaded: " + "; ".join(said)
        self._notices.say(message)
        return Done(message=message)

    # ---- running -------------------------------------------------------

    def listen(self) -> tuple[Peer, ...]:
        """Bind the listening sockets now (raises ListenError); returns the real addresses."""
        if not self._listeners:
            self._listeners = self._given or open_listeners(
                self.config.host, self.config.port, reuse_port=self.config.worker is not None
            )
            self.addresses = tuple(sock.getsockname()[:2] for sock in self._listeners)
        return self.addresses

    @property
    def stopping(self) -> bool:
        return self._registry.stopping

    def stop(self) -> None:
        """Stop accepting, close every client with reason ``server shutdown``, then end ``serve()``."""
        self._registry.stopping = True
        self.stop_requested.set()
        if self._services_scope is not None:
            self._services_scope.cancel()

    async def serve(
        self, *, control: str = "", task_status: trio.TaskStatus[tuple[Peer, ...]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until stopped. ``control``: where consoles attach, for the ``listening`` event."""
        self.listen()
        self._clock.start()
        try:
            async with trio.open_nursery() as outer:
                outer.start_soon(self._outbox.pump)
                self._outbox.lifecycle(
                    ServerListening(addresses=self.addresses, at=self._clock.now(), config=self.config, control=control)
                )
                async with trio.open_nursery() as clients:
                    self._admission.clients = self._operator.senders = clients
                    with trio.CancelScope() as services_scope:
                        self._services_scope = services_scope
                        if self.stopping:
                            services_scope.cancel()
                        async with trio.open_nursery() as services:
                            services.start_soon(self._admission.serve, self._listeners)
                            services.start_soon(self._command_loop)
                            if self.config.idle_timeout is not None:
                                services.start_soon(self._operator.reap_idle, self.config.idle_timeout)
                            if self._answers is not None:
                                services.start_soon(self._answers.summaries.run)
                            self.serving.set()
                            task_status.started(self.addresses)
                    self._admission.stop(self._listeners)
                    self._close_listeners()
                    for conn in list(self._registry.connections.values()):
                        conn.shut_down()
                self._admission.refusal_summaries.report_now()
                self._outbox.lifecycle(ServerStopped(at=self._clock.now(), totals=self.totals()))
                with trio.move_on_after(STOP_DRAIN_SECONDS):
                    await self._outbox.drain()
                outer.cancel_scope.cancel()
        finally:
            self._close_listeners()
            self._refuse_orders()
            self._events.close()

    def _close_listeners(self) -> None:
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            trio.lowlevel.notify_closing(listener)
            listener.close()
