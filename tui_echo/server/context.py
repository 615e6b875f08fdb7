"""What the parts of a server share (as hypercorn's ``WorkerContext``): a narrow context, never the server.

The settings, the outbox (events), the wall clock, the registry (the relay
modes deliver to everyone; the operator kicks) and the notices. A mode
handler gets its connection and this, which is all a client loop needs, and
all a test of one needs to build.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from dataclasses import dataclass

import trio

from tui_echo.server.clients import ClientState, bounded_label
from tui_echo.server.clock import WallClock
from tui_echo.server.config import Framing, ServerConfig
from tui_echo.server.events import EVENT_DATA_BYTES, ClientLabelled, DataReceived
from tui_echo.server.framing import Framer, Kind, Piece
from tui_echo.server.notices import Notices
from tui_echo.server.outbox import EventOutbox
from tui_echo.server.registry import Registry


@dataclass(frozen=True, slots=True)
class Context:
    config: ServerConfig
    outbox: EventOutbox
    clock: WallClock
    registry: Registry
    notices: Notices

    @property
    def line_framing(self) -> bool:
        return self.config.framing is Framing.LINE

    @property
    def binary_framing(self) -> bool:
        return self.config.framing.binary

    def framer(self) -> Framer:
        """One client's reassembly of frames (a binary framing, or lines where a whole line matters)."""
        return Framer(self.config.framing, self.config.max_frame)

    def pieces(
        self,
        state: ClientState,
        pieces: list[Piece],
        now: float,
        kind: Callable[..., DataReceived] = DataReceived,
        *,
        buffered: int = 0,
        **more: Any,  # the kind's own fields (Any: they pass through publish's keywords to the event)
    ) -> None:
        """Count and report what a framer gave: a message per frame (or cut piece); noise counts none.
        Each event's ``bytes_in`` is the client's up to the end of its piece (``buffered``: bytes the framer
        still holds, which come after them all)."""
        running = state.bytes_in - buffered - sum(len(piece.data) for piece in pieces)
        for data, piece in pieces:
            messages = 0 if piece is Kind.NOISE else 1
            state.messages_in += messages
            running += len(data)
            self.publish(
                state,
                data,
                messages,
                now,
                kind,
                bytes_in=running,
                noise=piece is Kind.NOISE,
                cut=piece is Kind.CUT,
                **more,
            )

    def label(self, state: ClientState, text: str, rule: int | None = None) -> None:
        """Set a client's label (``rule``: the rule whose action set it); an event only when it changes,
        so that a rule that labels every message it matches does not flood the feed."""
        label = bounded_label(text)
        if label != state.label:
            state.label = label
            self.outbox.lifecycle(
                ClientLabelled(client_id=state.client_id, label=label, at=self.clock.now(), rule=rule)
            )

    def arrived(self, state: ClientState, data: bytes | bytearray) -> float:
        """Count received bytes, not messages (a mode that frames its own counts them); returns trio's time."""
        now = trio.current_time()
        state.last_activity = now + self.clock.offset
        state.bytes_in += len(data)
        return now

    def count_in(self, state: ClientState, data: bytes | bytearray) -> tuple[float, int]:
        """Count received bytes and the messages they complete (a line each, or the chunk);
        returns trio's time and those messages."""
        messages = data.count(b"\n") if self.config.framing is Framing.LINE else 1
        now = trio.current_time()
        state.last_activity = now + self.clock.offset
        state.bytes_in += len(data)
        state.messages_in += messages
        return now, messages

    def publish(
        self,
        state: ClientState,
        data: bytes | bytearray,
        messages: int,
        now: float,
        kind: Callable[..., DataReceived] = DataReceived,
        *,
        bytes_in: int | None = None,
        size: int | None = None,
        **more: object,
    ) -> None:
        """The event for one message, unless the consumer had no room moments ago (then it is only counted).

        ``kind`` is DataReceived or one of its subclasses; the totals are the client's after it. ``size``: the
        message's, when ``data`` is only its start (the readiness loop keeps no more of a chunk it left out).
        """
        outbox = self.outbox
        if outbox.skip_if_full(now):
            return
        event = kind(
            client_id=state.client_id,
            data=bytes(data[:EVENT_DATA_BYTES]),
            size=len(data) if size is None else size,
            at=now + self.clock.offset,
            messages=messages,
            messages_in=state.messages_in,
            bytes_in=state.bytes_in if bytes_in is None else bytes_in,
            bytes_out=state.bytes_out,
            **more,
        )
        outbox.data(event, now)
