"""Chat and broker (``--mode chat|broker``): what one client says goes to every other client.

Each client runs a reader and a writer side by side; the first to end ends
both. The reader never waits for any receiver: it only appends to their
bounded queues (``tui_echo.server.relay.Outbound``). The writer never waits
for anyone but its own client. A message a reply rule answers goes back to
its sender (through its own queue) instead, and is not relayed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import trio

from tui_echo.server.config import Mode
from tui_echo.server.connection import Connection, Ended, ModeHandler, until_it_ends
from tui_echo.server.events import ClientDisconnected, DataAnswered, DataRelayed, DisconnectReason
from tui_echo.server.answers import RuleAnswers
from tui_echo.server.context import Context
from tui_echo.server.framing import Kind
from tui_echo.server.relay import ChatLines, Outbound, joined, left, said
from tui_echo.server.responder import Responder
from tui_echo.text import format_size


# What the kernel may hold for each receiver (Linux doubles it for its own bookkeeping). Its own
# autotuning would let each socket take up to 4 MiB: a flood would first fill that much for every
# client that never reads, 300 of them 1.2 GB of copies, while the clients that do read waited.
# Bounded, a receiver that stops reading is full at once, and only its queue (below) holds more.
RELAY_SEND_BUFFER = 64 * 1024


class RelayMode(ModeHandler):
    send_buffer = RELAY_SEND_BUFFER

    def __init__(self, context: Context, answers: RuleAnswers | None) -> None:
        self._context = context
        self._answers = answers
        self._chat = context.config.mode is Mode.CHAT

    # ---- clients coming and going ------------------------------------------

    def joined(self, conn: Connection) -> None:
        conn.outbound = Outbound(conn.state, self._context.config.relay_queue_bytes)
        if self._chat:
            self.offer_to_others(None, joined(conn.state.client_id, conn.state.peer))

    def left(self, conn: Connection, gone: ClientDisconnected) -> None:
        if self._chat:
            self.offer_to_others(None, left(gone.client_id, gone.why))

    # ---- one client ------------------------------------------------------------

    def serve(self, conn: Connection) -> Coroutine[Any, Any, Ended]:
        return self._relay(conn)

    async def _relay(self, conn: Connection) -> Ended:
        ended: list[Ended] = []
        async with trio.open_nursery() as nursery:

            async def run(loop: Callable[[Connection], Coroutine[Any, Any, Ended]]) -> None:
                ended.append(await until_it_ends(loop(conn)))
                nursery.cancel_scope.cancel()

            nursery.start_soon(run, self._read)
            nursery.start_soon(run, self._write)
        return ended[0]

    async def _read(self, conn: Connection) -> Ended:
        context = self._context
        size = context.config.recv_size
        max_frame = context.config.max_frame
        chat = ChatLines(max_frame) if self._chat else None
        framer = context.framer() if context.binary_framing else None  # broker: a frame is one delivery
        line_framing = context.line_framing
        answers = self._answers
        responder = None if answers is None else answers.responder(conn, line_framing=False, max_frame=max_frame)
        while True:
            # The client's transport now (faults set or cleared meanwhile); a delivery must not change under a queue
            data = bytes(await conn.transport.receive(size))
            if not data:
                if chat is not None and (rest := chat.rest()):  # a last line without its newline is said too
                    self._message(conn, rest, 1, trio.current_time(), responder)
                if framer is not None and (piece := framer.rest()) is not None:
                    self._message(conn, piece.data, 1, trio.current_time(), responder, cut=True)
                return DisconnectReason.CLOSED_BY_PEER, ""
            now = context.arrived(conn.state, data)
            if framer is not None:
                for piece in framer.feed(data):
                    if piece.kind is Kind.NOISE:  # shown and counted, never relayed
                        context.pieces(conn.state, [piece], now)
                    else:
                        self._message(conn, piece.data, 1, now, responder, cut=piece.kind is Kind.CUT)
            elif chat is None:
                self._message(conn, data, data.count(b"\n") if line_framing else 1, now, responder)
            else:
                for line in chat.lines(data):
                    self._message(conn, line, 1, now, responder)
            # Neither is kept while the next receive waits: a partial chat line is held once, by `chat`.
            line = data = b""

    def _message(
        self,
        conn: Connection,
        message: bytes,
        messages: int,
        now: float,
        responder: Responder | None,
        *,
        cut: bool = False,
    ) -> None:
        """Pass one message (a chat line, a broker chunk) on to every other client, and count it.

        A message a reply rule answers goes back to its sender instead (through the sender's own
        queue, so the reader never waits), and is not relayed.
        """
        state = conn.state
        context = self._context
        if responder is not None:
            reply = responder.answer(message, state.messages_in, now + context.clock.offset)
            if reply is not None:
                state.messages_in += messages
                if conn.outbound is not None:
                    conn.outbound.offer(reply)
                assert self._answers is not None
                taken = responder.take_answers()
                answered = self._answers.hit(taken, state)
                context.publish(state, message, messages, now, DataAnswered, cut=cut, **answered)
                return
            taken = responder.take_answers()
            if taken.actions:  # a rule without a reply matched: relayed as usual, and its actions run
                assert self._answers is not None
                self._answers.hit(taken, state)
        state.messages_in += messages
        mode = context.config.mode
        delivery = said(state.client_id, message) if self._chat else message
        recipients, dropped = self.offer_to_others(conn, delivery)
        context.publish(
            state, message, messages, now, DataRelayed, mode=mode, recipients=recipients, dropped=dropped, cut=cut
        )

    async def _write(self, conn: Connection) -> Ended:
        """Write the client's queued deliveries, whole, a batch at a time."""
        outbound = conn.outbound
        assert outbound is not None
        write_lock = conn.write_lock
        while True:
            data, count = await outbound.batch()
            async with write_lock:  # an operator send goes between two deliveries, never inside one
                await conn.transport.send_all(data)  # through its faults, if it has any now
            outbound.written(count)

    # ---- to everyone -------------------------------------------------------------

    def offer_to_others(self, sender: Connection | None, delivery: bytes) -> tuple[int, int]:
        """Queue one delivery for every client but ``sender``; returns how many took it and how many had no room.

        A receiver that has no room is told about once, in a notice, then only counted.
        """
        recipients = dropped = 0
        for other in self._context.registry.connections.values():
            outbound = other.outbound
            if other is sender or outbound is None or other.close_reason is not None:
                continue
            if outbound.offer(delivery):
                recipients += 1
                continue
            dropped += 1
            if not outbound.warned:
                outbound.warned = True
                self._context.notices.say(
                    f"#{other.state.client_id} is not reading: its queue is full ({format_size(outbound.limit)}), "
                    "so what is sent to it is dropped and counted"
                )
        return recipients, dropped
