"""The control socket's places: consoles attached, and connections still to say hello.

A console takes one of the MAX_CONSOLES places only once it has said hello.
Until then it waits, with HELLO_SECONDS to say it; at most MAX_WAITING wait at
once, and one more closes the one that has waited longest. A real console says
hello within milliseconds of connecting, so sockets that connect and say
nothing (a forgotten script, a squatter) can never lock ``ctl`` or ``attach``
out: they only push each other out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import trio

from tui_echo.control.protocol import ProtocolError

MAX_CONSOLES = 64  # consoles attached (past their hello) at once; more are turned away with an error
MAX_WAITING = 64  # connections waiting to say hello; one more closes the one that has waited longest
HELLO_SECONDS = 10.0  # a connection that has not said hello by then is closed


def too_many_consoles() -> ProtocolError:
    return ProtocolError("too_many_consoles", f"{MAX_CONSOLES} consoles are attached already")


class Places:
    def __init__(self, notice: Callable[[str], None]) -> None:
        self.attached = 0
        self._waiting: OrderedDict[trio.CancelScope, None] = OrderedDict()
        self._notice = notice
        self._pushed_out = 0  # connections closed to make room, in this run

    @property
    def full(self) -> bool:
        return self.attached >= MAX_CONSOLES

    def wait(self, scope: trio.CancelScope) -> None:
        """A new connection, to be cancelled through ``scope`` if it has to make room before its hello."""
        if len(self._waiting) >= MAX_WAITING:
            oldest, _ = self._waiting.popitem(last=False)
            oldest.cancel()
            self._pushed_out += 1
            if self._pushed_out == 1:  # once per run: a flood of these says so once, not once each
                self._notice(
                    f"control socket: {MAX_WAITING} connections wait for their hello; "
                    "closing the longest-waiting to make room (said once)"
                )
        self._waiting[scope] = None

    def attach(self, scope: trio.CancelScope) -> bool:
        """The connection said hello: True if it has a place now (then ``leave(attached=True)`` frees it)."""
        self._waiting.pop(scope, None)
        if self.full:
            return False
        self.attached += 1
        return True

    def leave(self, scope: trio.CancelScope, *, attached: bool) -> None:
        self._waiting.pop(scope, None)
        if attached:
            self.attached -= 1
