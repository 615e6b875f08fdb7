"""Discard (``--mode discard``, RFC 863): read and count, send nothing back."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from tui_echo.server.connection import Connection, Ended, ModeHandler
from tui_echo.server.events import DataDiscarded, DisconnectReason
from tui_echo.server.context import Context


class DiscardMode(ModeHandler):
    def __init__(self, context: Context) -> None:
        self._context = context

    def serve(self, conn: Connection) -> Coroutine[Any, Any, Ended]:
        return self._discard(conn)

    async def _discard(self, conn: Connection) -> Ended:
        transport = conn.transport
        state = conn.state
        context = self._context
        size = context.config.recv_size
        line_framing = context.line_framing
        while True:
            data = await transport.receive(size)
            if not data:
                return DisconnectReason.CLOSED_BY_PEER, ""
            now = context.count_in(state, data)
            messages = data.count(b"\n") if line_framing else 1
            state.messages_in += messages
            context.publish(state, data, messages, now, DataDiscarded)
