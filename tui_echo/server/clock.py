"""The server's two clocks: trio's for deadlines (tests jump it), the wall clock for what people read."""

from __future__ import annotations

import time

import trio


class WallClock:
    """Wall-clock times derived from trio's clock: ``trio.current_time() + offset``.

    One offset, fixed when serving starts, so that every event and client
    state of a run agree with each other even if the system clock is stepped.
    """

    __slots__ = ("offset",)

    def __init__(self) -> None:
        self.offset = 0.0

    def start(self) -> None:
        """Fix the offset: call once, inside trio, when serving starts."""
        self.offset = time.time() - trio.current_time()

    def now(self) -> float:
        return trio.current_time() + self.offset
