"""Echo with reply rules: a message a rule matches gets the rule's reply instead of its echo.

A loop of its own, plain and TLS clients alike, so that the plain echo
(``echo.py``) pays nothing for rules. The chunk's event is a
``DataAnswered`` when a rule answered any of its messages: how many, which
rules, what they replied. The client's own responder says (``take_answers``),
never a difference of the shared book's counters: another client's hits land
there while this client's replies are written.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import trio

from tui_echo.server.connection import Connection, Ended, ModeHandler
from tui_echo.server.events import DataAnswered, DataReceived, DisconnectReason
from tui_echo.server.answers import RuleAnswers
from tui_echo.server.context import Context
from tui_echo.server.framing import Kind


class EchoRulesMode(ModeHandler):
    def __init__(self, context: Context, answers: RuleAnswers) -> None:
        self._context = context
        self._answers = answers

    def serve(self, conn: Connection) -> Coroutine[Any, Any, Ended]:
        if self._context.binary_framing:
            return self._frames(conn)
        return self._echo(conn)

    async def _echo(self, conn: Connection) -> Ended:
        """Per chunk: count it, write each batch of replies and echo, then one event. Names it uses
        on every chunk are locals, as in the plain echo."""
        transport = conn.transport
        receive = transport.receive
        state = conn.state
        context = self._context
        answers = self._answers
        size = context.config.recv_size
        line_framing = context.line_framing
        wall_offset = context.clock.offset
        publish = context.publish
        clock = trio.current_time
        reply = self._reply
        responder = answers.responder(conn, line_framing=line_framing, max_frame=context.config.max_frame)
        respond, take_answers = responder.respond, responder.take_answers
        while True:
            if conn.transport is not transport:  # faults set or cleared: read through the new transport
                transport = conn.transport
                receive = transport.receive
            data = bytes(await receive(size))  # TLS gives a bytearray; the rules match bytes
            now = clock()
            if not data:
                await reply(conn, responder.finish(state.messages_in, now + wall_offset))
                return DisconnectReason.CLOSED_BY_PEER, ""
            messages = data.count(b"\n") if line_framing else 1
            count = state.messages_in
            state.last_activity = now + wall_offset
            state.bytes_in += len(data)
            state.messages_in = count + messages
            for batch in respond(data, count, now + wall_offset):
                await reply(conn, batch)
            taken = take_answers()  # this client's own, whatever other clients' rules did meanwhile
            if taken.count:  # a rule's answer is a line apart from the echo
                publish(state, data, messages, now, DataAnswered, **answers.hit(taken, state))
            else:
                if taken.actions:  # a rule without a reply matched: the echo, and its actions
                    answers.hit(taken, state)
                publish(state, data, messages, now)
            del data  # not kept while the next receive waits: a partial line is held once, by the responder

    async def _frames(self, conn: Connection) -> Ended:
        """A binary framing: a rule sees one whole frame (however many reads it took); what no rule
        answers, noise included, is echoed as it came, once its frame is whole."""
        receive = conn.transport.receive
        state = conn.state
        context = self._context
        answers = self._answers
        size = context.config.recv_size
        wall_offset = context.clock.offset
        framer = context.framer()
        responder = answers.responder(conn, line_framing=False, max_frame=context.config.max_frame)
        while True:
            data = await receive(size)
            if not data:
                pieces = [rest] if (rest := framer.rest()) is not None else []
                now = trio.current_time()
            else:
                now = context.arrived(state, data)
                pieces = framer.feed(data)
            bytes_in = state.bytes_in - framer.buffered - sum(len(piece.data) for piece in pieces)
            for piece in pieces:
                bytes_in += len(piece.data)  # the client's bytes up to the end of this piece, for its event
                if piece.kind is Kind.NOISE:
                    await self._reply(conn, piece.data)
                    context.pieces(state, [piece], now, buffered=state.bytes_in - bytes_in)
                    continue
                reply = responder.answer(piece.data, state.messages_in + 1, now + wall_offset)
                await self._reply(conn, piece.data if reply is None else reply)
                taken = responder.take_answers()
                answered = answers.hit(taken, state) if taken.count or taken.actions else {}
                kind = DataAnswered if taken.count else DataReceived
                if not taken.count:
                    answered = {}  # a rule without a reply: its actions ran, the frame is echoed
                context.pieces(state, [piece], now, kind, buffered=state.bytes_in - bytes_in, **answered)
            if not data:
                return DisconnectReason.CLOSED_BY_PEER, ""

    @staticmethod
    async def _reply(conn: Connection, data: bytes) -> None:
        """Write a rule's reply (or the echo) whole, after any operator send being written."""
        if data:
            async with conn.write_lock:
                await conn.transport.send_all(data)
