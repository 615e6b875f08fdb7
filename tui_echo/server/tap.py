"""The recording tap: a ``Transport`` around a client's own, which hands every byte to a recorder.

Composed in the factory a new client's transport comes from (``Admission``),
only while a recording runs: a client without one keeps the plain echo's hot
loop and pays nothing. The tap sees every byte in both directions (plaintext
under TLS), as the client's transport moved it: what was received, and what
was written whole, whether an echo, a rule's reply, a relay or an operator's
send. A write of the very object last received is an echo, and the recorder
writes it without a second copy of its bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from tui_echo.server.transport import Transport


class RecordSink(Protocol):
    """Where a tap puts what it saw; never waits (a recorder that cannot keep up records a gap instead)."""

    def received(self, client_id: int, data: bytes | bytearray) -> None: ...

    def sent(self, client_id: int, data: bytes | bytearray | memoryview, echoed: bool) -> None: ...


class TapTransport:
    __slots__ = ("inner", "_sink", "_client_id", "_last")

    def __init__(self, inner: Transport, sink: RecordSink, client_id: int) -> None:
        self.inner = inner
        self._sink = sink
        self._client_id = client_id
        self._last: object = None  # the last chunk received: writing it back is an echo

    def receive(self, size: int) -> Awaitable[bytes | bytearray]:
        return self._receive(size)

    async def _receive(self, size: int) -> bytes | bytearray:
        data = await self.inner.receive(size)
        if data:
            self._sink.received(self._client_id, data)
            self._last = data
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Recorded once written whole: what the client was sent (a write cut short by its end is not)."""
        await self.inner.send_all(data)
        self._sink.sent(self._client_id, data, data is self._last)

    async def close_gracefully(self, linger: float) -> None:
        await self.inner.close_gracefully(linger)

    def shut_down(self) -> bool:
        return self.inner.shut_down()

    def close(self) -> None:
        self.inner.close()
