"""Setting and clearing a client's faults: ``--fault`` at connect (with its toxicity), the operator, a rule.

A fault set wraps the client's transport in a ``FaultTransport`` (a change
replaces the wrapper, a clear unwraps it), says so in a ``FaultChanged``,
and shows in the client's state (``fault``, ``fault_ends``). The client's
loop sees the new transport at its next message and moves to the
fault-aware loop, or back. Draws (toxicity, drop, corrupt, jitter) come
from one generator per client, seeded from ``--fault-seed`` and the client's
id, so that a seeded run repeats whatever the order clients come in.
"""

from __future__ import annotations

import random

import trio

from tui_echo.server.clock import WallClock
from tui_echo.server.config import ServerConfig
from tui_echo.server.connection import Connection
from tui_echo.server.events import DataCorrupted, DisconnectReason, FaultChanged
from tui_echo.server.fault_transport import FaultTransport, exempt_from_timeouts
from tui_echo.server.faults import Faults, format_faults
from tui_echo.server.outbox import EventOutbox
from tui_echo.server.transport import FaultEnded


class Faulting:
    def __init__(self, config: ServerConfig, outbox: EventOutbox, clock: WallClock) -> None:
        self._config = config
        self._outbox = outbox
        self._clock = clock

    def at_connect(self, conn: Connection) -> None:
        """``--fault``: a new client gets it with its toxicity's chance (before it is served)."""
        faults = self._config.fault
        if faults is None:
            return
        rng = self._rng(conn.state.client_id)
        if faults.toxicity < 1.0 and rng.random() >= faults.toxicity:
            return
        self.set(conn, faults, "--fault", rng)

    def set(self, conn: Connection, faults: Faults | None, by: str, rng: random.Random | None = None) -> bool:
        """Give the client ``faults`` in place of any it has (None: clear them); False if there was nothing to clear."""
        current = conn.transport
        old = current if isinstance(current, FaultTransport) else None
        if faults is None and old is None:
            return False
        bare = current if old is None else old.inner
        state = conn.state
        now = trio.current_time()
        if faults is None:
            conn.transport = bare
            state.fault, state.fault_ends = "", None
        else:
            if rng is None:
                rng = old.rng if old is not None else self._rng(state.client_id)
            client_id = state.client_id

            def report(offsets: tuple[int, ...], corrupted: int) -> None:
                now = trio.current_time()
                event = DataCorrupted(
                    client_id=client_id,
                    at=now + self._clock.offset,
                    offsets=offsets,
                    corrupted=corrupted,
                    corrupted_total=state.fault_corrupted,
                )
                self._outbox.data(event, now)

            transport = conn.transport = FaultTransport(bare, faults, state, rng, now, report)
            state.fault = format_faults(faults)
            ends_in = faults.ends_in
            state.fault_ends = None if ends_in is None else now + self._clock.offset + ends_in / 1000
        if old is not None:
            old.changed.set()  # its waits (a stall, a timed end) are over: the new faults start their own
        exempt_from_timeouts(conn.write_timeout, self._config.write_timeout, faults)
        self._outbox.lifecycle(
            FaultChanged(
                client_id=state.client_id,
                at=now + self._clock.offset,
                faults=state.fault,
                by=by,
                ends_at=state.fault_ends,
            )
        )
        if faults is not None:
            try:
                transport.check_budget()
            except FaultEnded:  # reset, close-after=0: now, not at the client's next message
                conn.kick(DisconnectReason.FAULT)
        return True

    def _rng(self, client_id: int) -> random.Random:
        seed = self._config.fault_seed
        return random.Random() if seed is None else random.Random(f"{seed}/{client_id}")
