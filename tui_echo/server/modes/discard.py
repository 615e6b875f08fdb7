"""Discard (``--mode discard``, RFC 863): read and count, send nothing back."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import trio

from tui_echo.server.connection import Connection, Ended, ModeHandler
from tui_echo.server.events import DataDiscarded, DisconnectReason
from tui_echo.server.context import Context


class DiscardMode(ModeHandler):
    def __init__(self, context: Context) -> None:
        self._context = context

    def serve(self, conn: Connection) -> Coroutine[Any, Any, Ended]:
        return self._discard(conn)

    async def _discard(self, conn: Connection) -> Ended:
        context = self._context
        size = context.config.recv_size
        framer = context.framer() if context.binary_framing else None
        while True:
            data = await conn.transport.receive(size)
            if framer is not None:
                if not data:
                    if (rest := framer.rest()) is not None:
                        context.pieces(conn.state, [rest], trio.current_time(), DataDiscarded)
                    return DisconnectReason.CLOSED_BY_PEER, ""
                now = context.arrived(conn.state, data)
                context.pieces(conn.state, framer.feed(data), now, DataDiscarded, buffered=framer.buffered)
                continue
            if not data:
                return DisconnectReason.CLOSED_BY_PEER, ""
            now, messages = context.count_in(conn.state, data)
            context.publish(conn.state, data, messages, now, DataDiscarded)
