"""How often the garbage collector runs while the monitor holds thousands of clients. No trio, no Textual.

CPython collects its youngest generation every 700 new objects by default,
and moves what is still alive into the next one. With 1,000 clients echoing,
that is every few dozen microseconds, so the echo's short-lived objects (a
receive's coroutine lives one round trip) are alive when it runs and reach
the oldest generation, whose full collections then come every 2-3 s. A full
collection walks every live object: at 10,000 clients it took 130-260 ms, and
a keypress that met one waited that long (keypress p99 227 ms). Collecting
the youngest generation every 10,000 objects gives them time to die young:
no full collection ran while 100 keys were pressed, and the p99 was 94 ms
(see the README's Performance section). Cycles are still collected; only
later, by at most 10,000 objects' worth of memory.
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS = 10_000  # new objects between two collections of the youngest generation (CPython: 700)


class GcPace:
    """Set the young generation's threshold while the monitor runs, and put the old one back after."""

    def __init__(self) -> None:
        self._before: tuple[int, int, int] | None = None

    def start(self) -> None:
        if self._before is None:
            self._before = gc.get_threshold()
            gc.set_threshold(max(YOUNG_OBJECTS, self._before[0]), self._before[1], self._before[2])

    def stop(self) -> None:
        if self._before is not None:
            gc.set_threshold(*self._before)
            self._before = None
