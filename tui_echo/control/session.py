"""One console on the control socket: hello, snapshot, then events and counts out, commands in.

Each console has its own subscription (a bounded queue, see
``tui_echo.server.subscription``) and its own tasks, so a console that stops
reading blocks only itself: its data events are dropped and counted, and
once its queue is past the bound it gets a fresh snapshot instead of a
backlog. Bad input gets an error reply; after MAX_ERRORS the console is
closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio

from tui_echo.control import protocol
from tui_echo.control.paths import Credentials
from tui_echo.control.places import HELLO_SECONDS, too_many_consoles
from tui_echo.control.protocol import ProtocolError, VersionMismatch
from tui_echo.net import format_address
from tui_echo.server.server import EchoServer
from tui_echo.server.events import ClientConnected, ClientDisconnected, ServerStopped
from tui_echo.server.subscription import Subscription
from tui_echo.times import utc_time
from tui_echo.wire.records import Record
from tui_echo.wire.settings import ServerInfo, encode_server
from tui_echo.wire.state import (
    ClientCounts,
    CountsTuple,
    counts_of,
    encode_ban,
    encode_counts,
    encode_rule,
    encode_totals,
)

_RECEIVE_BYTES = 65536


class _Closed(Exception):
    """This console is done: it left, or it made too many errors."""


class _Lines:
    """Splits what a console sends into lines, bounding each to MAX_LINE_BYTES."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._skipping = False  # inside a line that was too long: drop it up to its newline
        self._ended = False

    async def next(self) -> bytes:
        """The next line without its newline; raises ProtocolError for a huge or half line, _Closed at EOF."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                if self._skipping:
                    self._skipping = False
                    continue
                if len(line) > protocol.MAX_LINE_BYTES:
                    raise ProtocolError("line_too_long", f"a line may hold at most {protocol.MAX_LINE_BYTES} bytes")
                return line.removesuffix(b"\r")
            if len(self._buffer) > protocol.MAX_LINE_BYTES:
                self._buffer.clear()
                if not self._skipping:
                    self._skipping = True
                    raise ProtocolError("line_too_long", f"a line may hold at most {protocol.MAX_LINE_BYTES} bytes")
            if self._ended:
                raise _Closed
            try:
                data = await self._stream.receive_some(_RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _Closed from None
            if not data:
                self._ended = True
                if self._buffer and not self._skipping:
                    self._buffer.clear()
                    raise ProtocolError("half_line", "the input ended in the middle of a line (no newline)")
                raise _Closed
            self._buffer += data


class ConsoleSession:
    def __init__(
        self,
        server: EchoServer,
        stream: trio.SocketStream,
        who: Credentials,
        server_info: Callable[[], ServerInfo],
        attach: Callable[[], bool],
    ) -> None:
        """``attach``: called once the console has said hello; False if no place is free for it."""
        self._server = server
        self._attach = attach
        self._stream = stream
        self._who = who
        self._server_info = server_info
        self._send_lock = trio.Lock()  # replies and events share the stream
        self._errors = 0

    async def run(self) -> None:
        subscription: Subscription | None = None
        try:
            async with trio.open_nursery() as nursery:
                await self._send(protocol.hello("server", server=encode_server(self._server_info())))
                lines = _Lines(self._stream)
                with trio.fail_after(HELLO_SECONDS):
                    hello = await self._hello(lines)
                if not self._attach():
                    await self._send(protocol.error_message(too_many_consoles()))
                    raise _Closed
                if hello.get("events", True) is not False:
                    subscription = self._server.subscribe()
                    nursery.start_soon(self._stream_events, subscription)
                elif hello.get("snapshot", True) is not False:
                    await self._send(*self._snapshot())
                await self._commands(lines)
                nursery.cancel_scope.cancel()
        except* (_Closed, trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # a console that leaves, even by SIGKILL, is dropped quietly
        finally:
            if subscription is not None:
                subscription.close()
            with trio.CancelScope(shield=True), trio.move_on_after(0.5):
                await self._stream.aclose()

    async def _send(self, *records: Record) -> None:
        data = b"".join(protocol.encode_line(record) for record in records)
        async with self._send_lock:
            await self._stream.send_all(data)

    async def _error(self, error: ProtocolError) -> None:
        """Answer a bad message; close the console after too many."""
        self._errors += 1
        if error.request_id is not None:
            await self._send(protocol.reply(error.request_id, error=error))
        else:
            await self._send(protocol.error_message(error))
        if self._errors >= protocol.MAX_ERRORS:
            await self._send(
                protocol.error_message(
                    ProtocolError("too_many_errors", f"{self._errors} errors on this connection: closing it")
                )
            )
            raise _Closed

    async def _hello(self, lines: _Lines) -> dict[str, Any]:
        while True:
            try:
                message = protocol.decode_line(await lines.next())
                protocol.check_hello(message)
            except VersionMismatch as exc:
                # Nothing more it sends can be read: one line that names both versions, then close.
                why = (
                    f"this server speaks version {protocol.VERSION} of the control protocol and the console "
                    f"version {exc.theirs!r}: use a console from the same tui-echo release as the server"
                )
                await self._send(protocol.error_message(ProtocolError(exc.code, why)))
                raise _Closed from None
            except ProtocolError as exc:
                await self._error(exc)
                continue
            return message

    def _snapshot(self, subscription: Subscription | None = None) -> list[Record]:
        lost = data_dropped = 0
        if subscription is not None:
            lost, data_dropped = subscription.lost, subscription.data_dropped
            subscription.resynced()
        return protocol.snapshot(
            self._server_info(),
            self._server.clients(),
            self._server.totals(),
            self._server.bans(),
            self._server.rules(),
            lost=lost,
            data_dropped=data_dropped,
        )

    # ---- commands in ------------------------------------------------------

    async def _commands(self, lines: _Lines) -> None:
        while True:
            try:
                message = protocol.decode_line(await lines.next())
                if message["type"] == "hello":
                    raise ProtocolError("hello_again", "hello was already said")
                request = protocol.parse_command(message)
                self._check_client(request)
            except ProtocolError as exc:
                await self._error(exc)
                continue
            # Through the command channel, as the monitor's commands go; the server logs
            # "#3 kicked by …" just before it runs it, so the log then shows the disconnect.
            command = request.command()
            done = await self._server.command(command, issued=f"{request.describe()} by {self._who}")
            if done is not None:
                await self._send({**protocol.reply(request.request_id), **protocol.done_fields(command, done)})
            else:
                why = ProtocolError("server_stopped", "the server stopped before the command ran", request.request_id)
                await self._send(protocol.reply(request.request_id, error=why))

    def _check_client(self, request: protocol.Request) -> None:
        client_id = request.args.get("client")
        if client_id is not None and all(state.client_id != client_id for state in self._server.clients()):
            raise ProtocolError("no_such_client", f"no client #{client_id} is connected", request.request_id)

    # ---- events and counts out ------------------------------------------

    async def _stream_events(self, subscription: Subscription) -> None:
        peers: dict[int, str] = {}
        counted: dict[int, CountsTuple] = {}  # what this console was last sent of each client
        last_totals: Record = {}

        def reset() -> list[Record]:
            """A snapshot, taken with no checkpoint before the events that follow it."""
            records = self._snapshot(subscription)
            peers.clear()
            counted.clear()
            for state in self._server.clients():
                peers[state.client_id] = format_address(state.peer)
                counted[state.client_id] = counts_of(state)
            return records

        await self._send(*reset())
        next_counts = trio.current_time() + protocol.COUNTS_SECONDS
        while True:
            with trio.move_on_at(next_counts):
                await subscription.wait()
            records: list[Record] = []
            if subscription.out_of_sync:
                records.extend(reset())
            stopped = False
            for event in subscription.take():
                if isinstance(event, ClientConnected):
                    peers[event.client_id] = format_address(event.peer)
                elif isinstance(event, ClientDisconnected):
                    peers.pop(event.client_id, None)
                    counted.pop(event.client_id, None)
                elif isinstance(event, ServerStopped):
                    stopped = True
                client_id = getattr(event, "client_id", 0)
                records.append(protocol.event_message(event, peer=peers.get(client_id, "?"), clients_now=len(peers)))
            if trio.current_time() >= next_counts or stopped:
                next_counts = trio.current_time() + protocol.COUNTS_SECONDS
                records.extend(self._counts(counted, subscription, last_totals))
            if records:
                await self._send(*records)
            if stopped:
                raise _Closed

    def _counts(self, counted: dict[int, CountsTuple], subscription: Subscription, last: Record) -> list[Record]:
        """The clients whose counts changed since the last time, in pages, and the totals with the
        last page; none if nothing changed."""
        changed = []
        for state in self._server.clients():
            now = counts_of(state)
            if counted.get(state.client_id) != now:
                counted[state.client_id] = now
                changed.append(encode_counts(state.client_id, ClientCounts._make(now)))
        totals = encode_totals(self._server.totals())
        bans = [encode_ban(ban) for ban in self._server.bans()]
        dropped = subscription.data_dropped
        if not changed and (totals, bans, dropped) == (last.get("totals"), last.get("bans"), last.get("data_dropped")):
            return []
        hit = totals["rule_hits"] != last.get("rule_hits")  # the rules table, only when a rule was hit
        rules = [encode_rule(rule) for rule in self._server.rules()] if hit else None
        last.update(totals=totals, bans=bans, data_dropped=dropped, rule_hits=totals["rule_hits"])
        return protocol.counts(utc_time(time.time()), changed, totals, bans, dropped, rules)
