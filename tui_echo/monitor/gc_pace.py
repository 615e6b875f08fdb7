"""How the garbage collector runs while the monitor holds thousands of clients. No trio, no Textual.

Young objects: CPython collects its youngest generation every 700 new
objects by default, and moves what is still alive into the next one. With
1,000 clients echoing, that is every few dozen microseconds, so the echo's
short-lived objects (a receive's coroutine lives one round trip) are alive
when it runs and reach the oldest generation, whose full collections then
came every 2-3 s. Collecting the youngest every 10,000 objects gives them
time to die young.

Old objects: a full collection walks every live object, about 60 per client
(the server's task, socket, coroutines and the monitor's row): 200-600 ms at
10,000 clients, every ~50 s with 1,000 of them echoing, and a keypress that
met one waited that long. So what survives a full collection is frozen
(``gc.freeze``: left out of every later collection), and the next full
collections walk only what came since: a few ms. Frozen objects are still
freed when their last reference goes; only a cycle among them, such as a
departed client's objects, waits for the deep pass, which thaws everything,
collects it all and freezes the survivors again (the one long pause left). It
runs once 1,000 clients have come or gone since the last one (what came is
walked by every full collection until frozen, what went may be frozen
garbage), or every 5 minutes, whichever comes first; it waits for 1 s
without a keypress (a person typing never meets it), at most 5 minutes; and
it runs at most every 10 s, so that at any churn the deep passes cost the
echo at most 3 % of a core (200-300 ms at 10,000 clients).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

YOUNG_OBJECTS = 10_000  # new objects between two collections of the youngest generation (CPython: 700)
DEEP_AFTER_CLIENTS = 1_000  # a deep pass once this many clients came or went since the last one
DEEP_EVERY_SECONDS = 300.0  # and at least this often
DEEP_REST_SECONDS = 1.0  # it waits until no key has been pressed for this long
DEEP_WAIT_SECONDS = 300.0  # but no longer than this once it is due (a key held down, say)
DEEP_MIN_SECONDS = 10.0  # and two deep passes are at least this far apart


class GcPace:
    """The collector's pace while the monitor runs (``start``/``stop`` put CPython's own back), driven by
    ``tick`` (a timer of the app's) and ``key_pressed``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._before: tuple[int, int, int] | None = None
        self._collected = False  # a full collection ran since the last freeze: freeze its survivors
        self._last_key = self._last_deep = self._due_since = 0.0
        self._clients_at_deep = 0
        self.deep_passes = 0  # thaw, collect everything, freeze (a test counts them)

    @property
    def running(self) -> bool:
        return self._before is not None

    def start(self, clients: int = 0) -> None:
        if self._before is not None:
            return
        self._before = gc.get_threshold()
        gc.set_threshold(max(YOUNG_OBJECTS, self._before[0]), self._before[1], self._before[2])
        gc.callbacks.append(self._noted)
        gc.freeze()  # Textual, trio and the rest of the program, before any client (no collection: a test
        # process starts many monitors); a deep pass may follow at once, the clients' objects being new
        self._last_deep, self._clients_at_deep = self._clock() - DEEP_MIN_SECONDS, clients

    def stop(self) -> None:
        if self._before is None:
            return
        gc.callbacks.remove(self._noted)
        gc.unfreeze()  # the next full collection walks (and frees) everything again
        gc.set_threshold(*self._before)
        self._before = None

    def key_pressed(self) -> None:
        self._last_key = self._clock()

    def tick(self, clients: int) -> None:
        """Freeze what the last full collection kept, and run the deep pass when it is due and the keyboard
        rests. ``clients``: how many clients have come and gone since the server started (a count that only
        grows)."""
        if self._before is None:
            return
        now = self._clock()
        since = now - self._last_deep
        due = clients - self._clients_at_deep >= DEEP_AFTER_CLIENTS or since >= DEEP_EVERY_SECONDS
        if not due or since < DEEP_MIN_SECONDS:
            self._due_since = 0.0
        else:
            self._due_since = self._due_since or now
            if now - self._last_key >= DEEP_REST_SECONDS or now - self._due_since >= DEEP_WAIT_SECONDS:
                self._deep(clients)
                return
        if self._collected:
            self._collected = False
            gc.freeze()

    def _deep(self, clients: int) -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._collected = False
        self._last_deep, self._clients_at_deep, self._due_since = self._clock(), clients, 0.0
        self.deep_passes += 1

    def _noted(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2:
            self._collected = True  # frozen at the next tick: not from inside the collector
