"""One worker's load: asyncio connections that send, time and check every echoed byte.

Each connection sends the same message again and again. Closed loop (the
default, as vmbench's echo client): ``pipeline`` messages in flight, the next
one sent when one comes back. Open loop (``rate``): messages leave on a fixed
schedule whatever the server does, and latency counts from when a message
was *due*, so a server that stalls is not flattered by the client waiting
for it (coordinated omission). Plain TCP or TLS (``spec.tls``); the chat
pattern (``tui_echo.load.chat``) shares the connection's life cycle here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from hdrh.histogram import HdrHistogram

from tui_echo.load.tls import TlsClient, describe_connect_error

LOWEST_US, HIGHEST_US, DIGITS = 1, 60_000_000, 3  # latencies from 1 us to 60 s, 3 significant digits
MAX_ERRORS_KEPT = 20  # error details kept per worker; the rest are counted
OPEN_LOOP_MAX_IN_FLIGHT = 10_000  # per connection: past this the server is not keeping up at all


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSpec:
    host: str
    port: int
    connections: int
    seconds: float
    message: bytes
    pipeline: int = 1
    rate: float | None = None  # messages a second for this worker's connections together; None: closed loop
    ramp: float = 0.0  # seconds over which the connections open
    first_connection: int = 1  # numbers in error messages are global across workers
    tls: TlsClient | None = None  # connect with TLS, trusting what this says
    chat: bool = False  # the chat pattern (tui_echo.load.chat) instead of the echo


@dataclass(slots=True)
class Progress:
    """What a worker has done so far; read by the progress display."""

    connected: int = 0
    open: int = 0
    messages: int = 0
    errors: int = 0
    measuring: bool = False


@dataclass(slots=True)
class WorkerResult:
    messages: int = 0  # echoed and checked within the measured window (chat: deliveries received and checked)
    lines: int = 0  # chat: lines that reached every other client within the measured window
    missed: int = 0  # chat: deliveries that never came (the server dropped them, or they timed out)
    notices: int = 0  # chat: the server's own lines (joins, leaves, the operator), over the whole run
    bytes_sent: int = 0  # over the whole run, warm-up included
    bytes_checked: int = 0  # echo that came back and matched, over the whole run
    measured_seconds: float = 0.0
    measured_from: float = 0.0  # the measured window, as Unix time: to line it up with what a server measured
    measured_until: float = 0.0
    connect_seconds: float = 0.0  # until every connection had its first echo (or failed)
    first_echoes: int = 0  # connections that had their first echo (chat: whose first line reached all the others)
    connect_failures: int = 0
    mismatches: int = 0
    early_eofs: int = 0
    errors: list[str] = field(default_factory=list)
    histogram: HdrHistogram = field(default_factory=new_histogram)

    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)


class Connection(asyncio.Protocol):
    """One connection's life, whatever the pattern: the TLS pin, failures, EOF, the counts of open ones."""

    RECEIVED = "bytes of echo"  # what ``received`` counts, in errors

    def __init__(self, number: int, run: Run) -> None:
        self.number = number
        self.run = run
        self.received = 0  # bytes checked so far
        self.sent = 0
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.failed = False
        self.refused = False  # over TLS: the server is not the pinned one

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.run.progress.open += 1
        tls = self.run.spec.tls
        problem = tls.problem(transport) if tls is not None else None
        if problem is None:
            self.start()
            return
        self.failed = self.refused = True  # a server that is not the pinned one gets nothing
        self.run.result.connect_failures += 1
        self.run.result.error(f"connection #{self.number}: connect failed: {problem}")
        self.run.progress.errors += 1
        transport.abort()

    def start(self) -> None:
        """Connected (and, over TLS, the server is trusted): the pattern begins."""

    def fail(self, text: str, *, mismatch: bool = False, eof: bool = False) -> None:
        self.failed = True
        result = self.run.result
        result.error(text)
        result.mismatches += mismatch
        result.early_eofs += eof
        self.run.progress.errors += 1
        if self.transport is not None:
            self.transport.abort()

    def eof_received(self) -> bool | None:
        if not self.run.stopping and not self.failed:
            self.fail(f"connection #{self.number}: early EOF after {self.received} {self.RECEIVED}", eof=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.run.progress.open -= 1
        if self.run.progress.open == 0:
            self.run.all_closed.set()
        if not self.run.stopping and not self.failed:
            why = f"reset ({exc})" if exc else "closed"
            self.fail(f"connection #{self.number}: {why} after {self.received} {self.RECEIVED}", eof=True)
        self.lost()

    def lost(self) -> None:
        """The connection is gone, for whatever reason."""


class _EchoChecker(Connection):
    """One connection: compares what comes back with what was sent, byte by byte."""

    def __init__(self, number: int, run: Run) -> None:
        super().__init__(number, run)
        self.message = run.spec.message
        self.length = len(self.message)
        self.due: deque[int] = deque()  # when each message in flight was sent (or due), ns
        self.first_echo = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        if self.run.spec.rate is None:
            for _ in range(self.run.spec.pipeline):
                self.send(time.perf_counter_ns())

    def send(self, due_ns: int) -> None:
        assert self.transport is not None
        self.due.append(due_ns)
        self.transport.write(self.message)
        self.sent += self.length

    def data_received(self, data: bytes) -> None:
        if self.failed:
            return
        view = memoryview(data)
        while view:
            offset = self.received % self.length
            take = min(len(view), self.length - offset)
            if view[:take] != self.message[offset : offset + take]:
                bad = next(i for i in range(take) if view[i] != self.message[offset + i])
                self.fail(f"connection #{self.number}: mismatch at byte offset {self.received + bad}", mismatch=True)
                return
            self.received += take
            view = view[take:]
            if self.received % self.length == 0:
                self.message_back()

    def message_back(self) -> None:
        now = time.perf_counter_ns()
        due = self.due.popleft()
        run = self.run
        if not self.first_echo.done():
            self.first_echo.set_result(None)
            run.result.first_echoes += 1
        if run.measuring:
            run.result.histogram.record_value(max((now - due) // 1000, LOWEST_US))
            run.result.messages += 1
            run.progress.messages += 1
        if run.spec.rate is None and not run.stopping:
            self.send(now)

    def lost(self) -> None:
        if not self.first_echo.done():
            self.first_echo.set_result(None)


@dataclass(slots=True)
class Run:
    spec: LoadSpec
    progress: Progress
    first_echo_limit: float = 30.0  # seconds every connection may take to be served before it counts as failed
    result: WorkerResult = field(default_factory=WorkerResult)
    measuring: bool = False
    stopping: bool = False
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)  # the server closed every connection
    ssl_context: ssl.SSLContext | None = None  # spec.tls's, made once per worker
    started: float = field(default_factory=time.perf_counter)


C = TypeVar("C", bound="Connection")


async def open_connections(run: Run, make: Callable[[int, Run], C]) -> list[C]:
    """Open every connection of ``run`` (evenly over the ramp); those that could not connect are left out."""
    spec = run.spec
    if spec.tls is not None:
        run.ssl_context = spec.tls.context()
    step = spec.ramp / spec.connections if spec.connections else 0.0
    opened = await asyncio.gather(
        *(_open(run, spec.first_connection + i, i * step, make) for i in range(spec.connections))
    )
    return [c for c in opened if c is not None]


async def _open(run: Run, number: int, delay: float, make: Callable[[int, Run], C]) -> C | None:
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    handshake_timeout = None if run.ssl_context is None else run.first_echo_limit
    try:
        _, connection = await loop.create_connection(
            lambda: make(number, run),
            run.spec.host,
            run.spec.port,
            ssl=run.ssl_context,
            ssl_handshake_timeout=handshake_timeout,
        )
    except OSError as exc:
        run.result.connect_failures += 1
        run.result.error(f"connection #{number}: connect failed: {describe_connect_error(exc)}")
        run.progress.errors += 1
        return None
    if connection.refused:
        return None
    run.progress.connected += 1
    return connection


async def _pace(run: Run, checkers: list[_EchoChecker]) -> None:
    """Open loop: every connection sends on its own fixed schedule, due times kept exact."""
    assert run.spec.rate is not None
    interval_ns = int(len(checkers) / run.spec.rate * 1e9)
    start = time.perf_counter_ns()
    # Spread the connections' first messages over one interval, so they do not all fire together.
    next_due = [start + interval_ns * i // len(checkers) for i in range(len(checkers))]
    while not run.stopping:
        now = time.perf_counter_ns()
        soonest = min(next_due)
        if soonest > now:
            await asyncio.sleep((soonest - now) / 1e9)
            continue
        for i, checker in enumerate(checkers):
            while next_due[i] <= now and not checker.closed:
                if len(checker.due) >= OPEN_LOOP_MAX_IN_FLIGHT:
                    checker.fail(f"connection #{checker.number}: {OPEN_LOOP_MAX_IN_FLIGHT} messages unanswered")
                    break
                checker.send(next_due[i])
                next_due[i] += interval_ns
            if checker.closed:
                next_due[i] = 2**62
        await asyncio.sleep(0)


async def measure(run: Run) -> None:
    """Every connection is served: count for ``spec.seconds``, or until the server has closed them all."""
    run.result.connect_seconds = time.perf_counter() - run.started
    run.measuring = run.progress.measuring = True
    begin = time.perf_counter()
    run.result.measured_from = time.time()
    with contextlib.suppress(TimeoutError):  # the usual end: the duration is over
        await asyncio.wait_for(run.all_closed.wait(), run.spec.seconds)
    run.result.measured_seconds = time.perf_counter() - begin
    run.result.measured_until = time.time()
    run.measuring = False


async def finish(run: Run, connections: Sequence[Connection], helper: asyncio.Task[None] | None) -> None:
    """The end, however it came: stop the helper task (the pacer, the sweeper), count bytes, close every connection."""
    run.stopping = True
    run.measuring = False
    if helper is not None:
        helper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await helper
    for connection in connections:
        run.result.bytes_sent += connection.sent
        run.result.bytes_checked += connection.received
        if connection.transport is not None:
            connection.transport.close()


async def run_load(spec: LoadSpec, progress: Progress, first_echo_limit: float = 30.0) -> WorkerResult:
    """Open the connections, wait for every first echo, then measure for ``spec.seconds``."""
    run = Run(spec, progress, first_echo_limit)
    checkers = await open_connections(run, _EchoChecker)
    pacer = asyncio.create_task(_pace(run, checkers)) if spec.rate is not None and checkers else None
    try:
        if checkers:
            await asyncio.wait([c.first_echo for c in checkers], timeout=spec.ramp + first_echo_limit)
            for checker in checkers:
                if not checker.first_echo.done() and not checker.failed:
                    checker.fail(f"connection #{checker.number}: no echo within {first_echo_limit:g} s")
            await measure(run)
    finally:
        await finish(run, checkers, pacer)
    return run.result


def run_worker(spec: LoadSpec, progress: Progress, first_echo_limit: float = 30.0) -> WorkerResult:
    """Run one worker's load in a fresh event loop; ``progress`` is updated as it goes."""
    return asyncio.run(run_load(spec, progress, first_echo_limit))
