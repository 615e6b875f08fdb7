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
        context = self._context
        size = context.config.recv_size
        while True:
            data = await conn.transport.receive(size)
            if not data:
                return DisconnectReason.CLOSED_BY_PEER, ""
            now, messages = context.count_in(conn.state, data)
            context.publish(conn.state, data, messages, now, DataDiscarded)
