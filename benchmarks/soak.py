"""Soak: minutes of client churn against the real tui-echo --headless --json, every echoed byte checked.

Two servers run side by side on 127.0.0.1 (port 0): one plaintext, one with --tls-self-signed (a TLS server
serves only TLS on its port). A build without TLS (the server exits with code 2 on the flag) runs the
plaintext half alone, with a note. Both start with --write-timeout WRITE_TIMEOUT, so that a client that
never reads is cut off within the soak. Against each, client kinds come and go in fixed numbers of lanes
(at most --max-clients at once in all):

  steady        long-lived, one message (1 B-2 KiB) in flight, a short pause between messages
  churn         connects, 1-3 messages, disconnects
  reset         a few messages, then one more sent and an abrupt close (SO_LINGER 0: RST) before its echo
  half-close    sends a few messages at once, shutdown(SHUT_WR), then reads the rest to EOF (plaintext only:
                TLS has no half-close)
  slow-reader   sends 2 MiB while reading its echo at about 800 KiB/s; must not be cut off
  never-reader  small socket buffers, sends until the server stops taking its data, never reads: the
                server must cut it off as "slow reader" after WRITE_TIMEOUT s; then it reads what reached
                it, which must still be a correct prefix of what it sent
  burst         sends 64 KiB writes as fast as it can for 3 s while reading its echo

Every client sends its own deterministic pseudo-random stream (seeded by its number) and compares every
byte it gets back with the same stream. At the end, each client is matched with the server's own record of
it (its `disconnected` log record, by the client's port, in connect order) and with the `stopped` totals.
Expected differences: a reset client does not read the echo of its last message, and the server may not
read all of that message either (its reset can overtake it: TLS reads a record at a time); a never-reader's
last bytes stay in socket buffers the server never reads, and its echo is cut off. Every other client must
match the server's counts exactly; any other difference fails.

The server's RSS is read from /proc at the end of the warmup, at the end, and as its peak (VmHWM).
Exit status 0 only if no byte differed or went missing and every count matches.

usage: python benchmarks/soak.py [--minutes 10] [--seconds S] [--warmup 30] [--max-clients 200] [--tui-echo COMMAND]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import resource
import shlex
import shutil
import signal
import socket
import ssl
import struct
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

TUI_ECHO = Path(sys.executable).with_name("tui-echo")
HOST = "127.0.0.1"
WRITE_TIMEOUT = 5.0  # the servers' --write-timeout: short, so that never-readers are cut off within the soak
ECHO_TIMEOUT = 30.0  # longest wait for one echo before the client counts it as missing
STOP_GRACE = 60.0  # after the soak's end, how long running clients may take to finish
READ_SIZE = 65536
BURST_SECONDS = 3.0
SLOW_TOTAL = 2 * 1024 * 1024
SLOW_READ = 16384  # the slow reader takes this much every SLOW_PAUSE seconds (~800 KiB/s)
SLOW_PAUSE = 0.02
NEVER_CAP = 64 * 1024 * 1024  # a never-reader that is still not stalled after this much is an error
STALL_SECONDS = 1.0  # a write that cannot drain for this long: the server has stopped reading


@dataclass(frozen=True)
class Lane:
    """``workers`` clients of one kind at once, each followed by a pause of ``pause`` seconds (random in range)."""

    kind: str
    workers: int
    pause: tuple[float, float]
    tls: bool = True  # whether the kind also runs against the TLS server


LANES = [
    Lane("steady", 20, (0.0, 0.5)),
    Lane("churn", 8, (0.0, 0.4)),
    Lane("reset", 2, (0.2, 1.0)),
    Lane("half-close", 2, (0.2, 1.0), tls=False),
    Lane("slow-reader", 1, (2.0, 5.0)),
    Lane("never-reader", 1, (2.0, 6.0)),
    Lane("burst", 1, (5.0, 10.0)),
]
KINDS = [lane.kind for lane in LANES]


class ByteStream:
    """An endless deterministic pseudo-random byte stream: the sender and the checker each hold one."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._buf = bytearray()

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += self._rng.randbytes(max(n, READ_SIZE))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


@dataclass
class ClientResult:
    server: str  # "plaintext" or "tls"
    kind: str
    number: int
    port: int = 0  # the client's own port: how the server's log names it
    connected_at: float = 0.0
    sent: int = 0  # bytes handed to the socket
    received: int = 0  # echoed bytes received, every one checked
    tail: int = 0  # a reset client's last message, sent just before the reset: the server may not read it all
    errors: list[str] = field(default_factory=list)


@dataclass
class ServerRun:
    name: str
    proc: asyncio.subprocess.Process
    port: int
    listening: dict[str, object]
    disconnected: list[dict[str, object]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    stopped: dict[str, object] | None = None
    bad_lines: int = 0
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    cpu: float = 0.0  # CPU seconds used by the end of the churn
    reader: asyncio.Task[None] | None = None
    stderr: asyncio.Task[bytes] | None = None


class Soak:
    def __init__(self, args: argparse.Namespace, deadline: float) -> None:
        self.deadline = deadline
        self.slots = asyncio.Semaphore(args.max_clients)
        self.results: list[ClientResult] = []
        self.numbers = iter(range(1, 1 << 62))
        self.tls_context = ssl.create_default_context()
        self.tls_context.check_hostname = False
        self.tls_context.verify_mode = ssl.CERT_NONE  # a throw-away certificate: its fingerprint is checked instead
        self.fingerprints: Counter[str] = Counter()  # TLS connections by how their certificate compared

    async def lane(self, server: ServerRun, lane: Lane, worker: int) -> None:
        rng = random.Random(f"{server.name}/{lane.kind}/{worker}")
        await asyncio.sleep(rng.uniform(0, 1))  # spread the first connects
        while time.monotonic() < self.deadline:
            async with self.slots:
                result = ClientResult(server.name, lane.kind, next(self.numbers))
                self.results.append(result)
                try:
                    async with asyncio.timeout(self.deadline - time.monotonic() + STOP_GRACE):
                        await self.client(server, result)
                except TimeoutError:
                    result.errors.append("did not finish by the end of the soak")
                except (OSError, EOFError, ssl.SSLError) as exc:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(rng.uniform(*lane.pause))

    async def client(self, server: ServerRun, result: ClientResult) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if result.kind == "never-reader":  # small buffers: the server's writes stall after a few hundred KiB
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (HOST, server.port))
        except BaseException:
            sock.close()
            raise
        result.port = sock.getsockname()[1]
        result.connected_at = time.monotonic()
        tls = self.tls_context if server.name == "tls" else None
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname="localhost" if tls else None, limit=READ_SIZE
        )
        conn = Conn(reader, writer, result)
        try:
            if tls:
                self.check_fingerprint(server, writer, result)
            await KIND_RUNNERS[result.kind](self, conn, random.Random(result.number))
        finally:
            conn.stop_reading()
            writer.transport.abort()  # a no-op after a clean close; never leaves a socket behind

    def check_fingerprint(self, server: ServerRun, writer: asyncio.StreamWriter, result: ClientResult) -> None:
        printed = server.listening.get("tls_fingerprint")
        cert = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        if not isinstance(printed, str) or cert is None:
            self.fingerprints["not compared (none printed)"] += 1
            return
        got = hashlib.sha256(cert).hexdigest()
        if got == printed.replace(":", "").lower():
            self.fingerprints["matched the printed SHA-256 fingerprint"] += 1
        else:
            self.fingerprints["did not match"] += 1
            result.errors.append(f"certificate SHA-256 {got} is not the printed {printed}")


class Conn:
    """One client connection: sends from its ByteStream, and checks every received byte against another."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, result: ClientResult) -> None:
        self.reader, self.writer, self.result = reader, writer, result
        self.outgoing = ByteStream(result.number)
        self.expected = ByteStream(result.number)
        self.eof = False
        self.read_error: BaseException | None = None
        self.progress = asyncio.Event()
        self.reading: asyncio.Task[None] | None = None

    def start_reading(self, pause: float = 0.0, size: int = READ_SIZE) -> None:
        self.reading = asyncio.create_task(self._read(pause, size))

    def stop_reading(self) -> None:
        if self.reading is not None:
            self.reading.cancel()

    async def _read(self, pause: float, size: int) -> None:
        result = self.result
        try:
            while True:
                data = await self.reader.read(size)
                if not data:
                    self.eof = True
                    return
                expected = self.expected.read(len(data))
                if data != expected:
                    at = next(i for i, (a, b) in enumerate(zip(data, expected, strict=True)) if a != b)
                    result.errors.append(f"echo differs at byte {result.received + at}")
                    self.read_error = EOFError("echo differs")
                    return
                result.received += len(data)
                self.progress.set()
                if pause:
                    await asyncio.sleep(pause)
        except (OSError, ssl.SSLError) as exc:
            self.read_error = exc
        finally:
            self.progress.set()

    async def until(self, done: Callable[[], bool], what: str, timeout: float = ECHO_TIMEOUT) -> None:
        """Wait until ``done()``; a read error, an early EOF or the timeout is an echo error."""
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    if self.read_error is not None or self.eof:
                        raise EOFError(f"{what}: {self.read_error or 'EOF'} at {self.result.received}")
                    self.progress.clear()
                    await self.progress.wait()
        except TimeoutError:
            raise EOFError(f"{what}: timed out at {self.result.received}/{self.result.sent}") from None

    async def echoed(self) -> None:
        await self.until(lambda: self.result.received >= self.result.sent, "echo missing")

    def write(self, size: int) -> None:
        self.writer.write(self.outgoing.read(size))
        self.result.sent += size

    async def close(self) -> None:
        """A clean close once everything is echoed: FIN (TLS: close_notify first)."""
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(5):
                await self.writer.wait_closed()

    def reset(self) -> None:
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def run_steady(soak: Soak, conn: Conn, rng: random.Random) -> None:
    conn.start_reading()
    ends = min(soak.deadline, time.monotonic() + rng.uniform(20, 60))
    while time.monotonic() < ends:
        conn.write(rng.randint(1, 2048))
        await conn.echoed()
        await asyncio.sleep(rng.uniform(0.05, 0.3))
    await conn.close()


async def run_churn(soak: Soak, conn: Conn, rng: random.Random) -> None:
    conn.start_reading()
    for _ in range(rng.randint(1, 3)):
        conn.write(rng.randint(1, 1024))
        await conn.echoed()
    await conn.close()


async def run_reset(soak: Soak, conn: Conn, rng: random.Random) -> None:
    conn.start_reading()
    for _ in range(rng.randint(1, 4)):
        conn.write(rng.randint(1, 4096))
        await conn.echoed()
    conn.result.tail = rng.randint(1, 65536)
    conn.write(conn.result.tail)  # the reset may come before the server reads all of it, and before its echo
    await conn.writer.drain()
    conn.stop_reading()
    conn.reset()


async def run_half_close(soak: Soak, conn: Conn, rng: random.Random) -> None:
    conn.start_reading()
    for _ in range(rng.randint(1, 8)):
        conn.write(rng.randint(1, 16384))
    await conn.writer.drain()
    conn.writer.write_eof()
    await conn.until(lambda: conn.eof, "no EOF after the echo")
    if conn.result.received != conn.result.sent:
        raise EOFError(f"EOF after {conn.result.received} of {conn.result.sent} bytes echoed")
    await conn.close()


async def run_slow_reader(soak: Soak, conn: Conn, rng: random.Random) -> None:
    conn.start_reading(SLOW_PAUSE, SLOW_READ)
    while conn.result.sent < SLOW_TOTAL:
        conn.write(16384)
        await wait_drained(conn, ECHO_TIMEOUT)
    await conn.echoed()
    await conn.close()


async def run_burst(soak: Soak, conn: Conn, rng: random.Random) -> None:
    conn.start_reading()
    ends = time.monotonic() + BURST_SECONDS
    while time.monotonic() < ends:
        conn.write(READ_SIZE)
        await wait_drained(conn, ECHO_TIMEOUT)
    await conn.echoed()
    await conn.close()


async def run_never_reader(soak: Soak, conn: Conn, rng: random.Random) -> None:
    """Writes until the server stops taking data, reads nothing until it must have been cut off, then reads
    what reached it (a prefix of its stream) up to the server's EOF or reset."""
    while True:
        conn.write(READ_SIZE)
        try:
            await wait_drained(conn, STALL_SECONDS)
            if conn.result.sent >= NEVER_CAP:
                raise EOFError(f"the server still took data after {NEVER_CAP} bytes unread")
        except TimeoutError:
            break
    await asyncio.sleep(WRITE_TIMEOUT + 1)
    conn.start_reading()
    await conn.until(lambda: conn.eof or conn.read_error is not None, "not cut off", WRITE_TIMEOUT + 10)
    if conn.read_error is not None and not isinstance(conn.read_error, ConnectionResetError):
        raise EOFError(f"cut off with {conn.read_error!r}")


async def wait_drained(conn: Conn, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        await conn.writer.drain()


KIND_RUNNERS: dict[str, Callable[[Soak, Conn, random.Random], Awaitable[None]]] = {
    "steady": run_steady,
    "churn": run_churn,
    "reset": run_reset,
    "half-close": run_half_close,
    "slow-reader": run_slow_reader,
    "never-reader": run_never_reader,
    "burst": run_burst,
}


# --- servers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartFailure:
    code: int | None  # the server's exit status, None if it could not be run at all
    message: str


async def start_server(name: str, command: list[str]) -> ServerRun | StartFailure:
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 20,
            start_new_session=True,  # Ctrl-C reaches the soak only, which then ends the servers itself
        )
    except FileNotFoundError:
        return StartFailure(None, f"cannot run {command[0]!r}")
    assert proc.stdout is not None and proc.stderr is not None
    first = await proc.stdout.readline()
    if not first:
        err = (await proc.stderr.read()).decode(errors="replace").strip()
        code = await proc.wait()
        return StartFailure(code, f"exited with code {code}: {err.splitlines()[-1] if err else '(no message)'}")
    listening = json.loads(first)
    run = ServerRun(name, proc, int(listening["port"]), listening)
    run.reader = asyncio.create_task(read_log(run, proc.stdout))
    run.stderr = asyncio.create_task(proc.stderr.read())
    return run


async def read_log(run: ServerRun, stdout: asyncio.StreamReader) -> None:
    """Parse the JSON log as it comes (a reader that keeps up, as a log collector would)."""
    async for line in stdout:
        try:
            record = json.loads(line)
        except ValueError:
            run.bad_lines += 1
            continue
        event = record.get("event")
        if event == "disconnected":
            run.disconnected.append(record)
            run.reasons[str(record["reason"])] += 1
        elif event == "stopped":
            run.stopped = record


def rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


async def stop_server(run: ServerRun) -> str:
    """SIGTERM, then the rest of its log; the str is its exit status or trouble."""
    run.rss_end, run.rss_peak = rss(run.proc.pid)
    run.proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            code = await run.proc.wait()
            assert run.reader is not None and run.stderr is not None
            await run.reader
            err = (await run.stderr).decode(errors="replace").strip()
    except TimeoutError:
        run.proc.kill()
        await run.proc.wait()
        return "did not stop within 10 s of SIGTERM (killed)"
    if code != 0:
        return f"exited with code {code}: {err[-300:]}"
    return ""


# --- the accounts -----------------------------------------------------------------------------------------


@dataclass
class Accounts:
    """One server's side of the ledger, after matching each client with the server's record of it."""

    clients: Counter[str] = field(default_factory=Counter)
    connected: int = 0
    sent: int = 0
    received: int = 0
    unread_in: dict[str, int] = field(default_factory=dict)  # bytes sent that the server never read, by kind
    unread_out: dict[str, int] = field(default_factory=dict)  # echo written by the server, not read, by kind
    record_bytes_in: int = 0
    record_bytes_out: int = 0
    echo_errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    cut_off: int = 0


def expected_reason(kind: str, reason: str) -> bool:
    if kind == "never-reader":
        return reason == "slow reader"
    if kind == "reset":  # the RST may arrive while the server reads or while it writes
        return reason == "closed by peer" or reason.startswith("error: ")
    return reason == "closed by peer"


def settle(run: ServerRun, results: list[ClientResult]) -> Accounts:
    acc = Accounts()
    mine = [r for r in results if r.server == run.name]
    by_port: dict[int, list[ClientResult]] = defaultdict(list)
    for r in mine:
        acc.clients[r.kind] += 1
        acc.sent += r.sent
        acc.received += r.received
        acc.echo_errors += [f"{r.kind} #{r.number}: {e}" for e in r.errors]
        if r.port:
            acc.connected += 1
            by_port[r.port].append(r)
    records: dict[int, list[dict[str, object]]] = defaultdict(list)
    for record in sorted(run.disconnected, key=lambda rec: int(str(rec["client"]))):
        records[int(str(record["peer"]).rsplit(":", 1)[1])].append(record)
        acc.record_bytes_in += int(str(record["bytes_in"]))
        acc.record_bytes_out += int(str(record["bytes_out"]))
    for port in by_port.keys() | records.keys():
        ours = sorted(by_port.get(port, []), key=lambda r: r.connected_at)
        theirs = records.get(port, [])
        if len(ours) != len(theirs):
            acc.mismatches.append(f"port {port}: {len(ours)} clients, {len(theirs)} server records")
            continue
        for r, record in zip(ours, theirs, strict=True):
            check_client(r, record, acc)
    return acc


def check_client(r: ClientResult, record: dict[str, object], acc: Accounts) -> None:
    bytes_in, bytes_out, reason = int(str(record["bytes_in"])), int(str(record["bytes_out"])), str(record["reason"])
    name = f"{r.kind} #{r.number} (server #{record['client']})"
    if not expected_reason(r.kind, reason):
        acc.mismatches.append(f"{name}: disconnected as {reason!r}")
    acc.cut_off += reason == "slow reader"
    if r.kind == "never-reader":
        ok = bytes_in <= r.sent and r.received <= bytes_out <= bytes_in
    elif r.kind == "reset":  # everything before its last message was echoed and checked
        ok = r.sent - r.tail <= bytes_in <= r.sent and r.sent - r.tail <= r.received <= bytes_out <= bytes_in
    else:
        ok = bytes_in == r.sent and bytes_out == r.received == r.sent
    if r.kind in ("reset", "never-reader"):
        acc.unread_in[r.kind] = acc.unread_in.get(r.kind, 0) + r.sent - bytes_in
        acc.unread_out[r.kind] = acc.unread_out.get(r.kind, 0) + bytes_out - r.received
    if not ok:
        acc.mismatches.append(
            f"{name}: sent {r.sent}, received {r.received}; server read {bytes_in}, wrote {bytes_out}"
        )


def stopped_field(run: ServerRun, key: str) -> int:
    return int(str((run.stopped or {}).get(key, -1)))


def verdicts(run: ServerRun, acc: Accounts, trouble: str) -> list[str]:
    """What is wrong with one server's soak; empty when everything matched."""
    wrong = [f"{run.name}: {trouble}"] if trouble else []
    if run.stopped is None:
        return [*wrong, f"{run.name}: no `stopped` record in the log"]
    unread_in, unread_out = sum(acc.unread_in.values()), sum(acc.unread_out.values())
    checks = [
        ("echo errors", len(acc.echo_errors), 0),
        ("per-client mismatches", len(acc.mismatches), 0),
        ("clients_total vs clients connected", stopped_field(run, "clients_total"), acc.connected),
        ("bytes_in vs bytes sent less those never read", stopped_field(run, "bytes_in"), acc.sent - unread_in),
        ("bytes_in vs its disconnected records", stopped_field(run, "bytes_in"), acc.record_bytes_in),
        ("bytes_out vs bytes received plus unread echo", stopped_field(run, "bytes_out"), acc.received + unread_out),
        ("bytes_out vs its disconnected records", stopped_field(run, "bytes_out"), acc.record_bytes_out),
        ("slow-reader cut-offs vs never-readers", acc.cut_off, acc.clients["never-reader"]),
        ("refused_total", stopped_field(run, "refused_total"), 0),
        ("tls_handshakes_failed", int(str(run.stopped.get("tls_handshakes_failed", 0))), 0),
        ("unparsable log lines", run.bad_lines, 0),
    ]
    wrong += [f"{run.name}: {what}: {got:,} != {want:,}" for what, got, want in checks if got != want]
    return wrong


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def unread(by_kind: dict[str, int], what: str) -> str:
    """An expected difference by client kind, e.g. `` (never read: reset 1,234, never-reader 5,678)``."""
    parts = [f"{kind} {n:,}" for kind, n in by_kind.items() if n]
    return f" ({what}: {', '.join(parts)})" if parts else ""


def table(runs: list[ServerRun], accounts: list[Accounts], seconds: float, warmup: float) -> list[str]:
    head = "| | " + " | ".join(run.name for run in runs) + " |"
    rows = [head, "|---" * (len(runs) + 1) + "|"]

    def row(label: str, cell: Callable[[ServerRun, Accounts], str]) -> None:
        rows.append(
            f"| {label} | " + " | ".join(cell(run, acc) for run, acc in zip(runs, accounts, strict=True)) + " |"
        )

    row("clients by kind", lambda r, a: ", ".join(f"{k} {a.clients[k]:,}" for k in KINDS if a.clients[k]))
    row(
        "clients connected / server `clients_total`",
        lambda r, a: f"{a.connected:,} / {stopped_field(r, 'clients_total'):,}",
    )
    row("server `messages_in` (chunks)", lambda r, a: f"{stopped_field(r, 'messages_in'):,}")
    row(
        "bytes sent by clients / server `bytes_in`",
        lambda r, a: f"{a.sent:,} / {stopped_field(r, 'bytes_in'):,}" + unread(a.unread_in, "never read"),
    )
    row(
        "bytes received by clients / server `bytes_out`",
        lambda r, a: f"{a.received:,} / {stopped_field(r, 'bytes_out'):,}" + unread(a.unread_out, "echo not read"),
    )
    row("echo errors (bytes differing or missing)", lambda r, a: f"**{len(a.echo_errors)}**")
    row("per-client mismatches with the server's records", lambda r, a: f"{len(a.mismatches)}")
    row("cut off as `slow reader` / never-readers", lambda r, a: f"{a.cut_off} / {a.clients['never-reader']}")
    row("disconnect reasons (log)", lambda r, a: "; ".join(f"{k} {n:,}" for k, n in r.reasons.most_common()))
    row(f"RSS after {warmup:g} s warmup → end", lambda r, a: f"{mib(r.rss_start)} → {mib(r.rss_end)}")
    row("peak RSS (VmHWM)", lambda r, a: mib(r.rss_peak))
    row("server CPU", lambda r, a: f"{r.cpu:.0f} s ({r.cpu / seconds:.0%} of a core)")
    return rows


async def soak(args: argparse.Namespace) -> int:
    command = shlex.split(args.tui_echo)
    if shutil.which(command[0]) is None:
        sys.exit(f"{command[0]} not found: run `make run` or pip install -e . first")
    base = [*command, "--headless", "--json", "--port", "0", "--host", HOST, "--write-timeout", f"{WRITE_TIMEOUT:g}"]
    runs: list[ServerRun] = []
    try:
        for name, extra in (("plaintext", []), ("tls", ["--tls-self-signed"])):
            started = await start_server(name, [*base, *extra])
            if isinstance(started, ServerRun):
                runs.append(started)
            elif name == "tls" and started.code == 2:  # a usage error: this build has no TLS yet
                note = f"TLS part switched off: this tui-echo has no --tls-self-signed yet ({started.message})"
                print(f"note: {note}", file=sys.stderr)
                return await churn(args, command, runs, [note])
            else:
                sys.exit(f"the {name} server: {started.message}")
        return await churn(args, command, runs, [])
    finally:
        for run in runs:  # only if the soak itself failed or was interrupted: churn() stops them
            if run.proc.returncode is None:
                run.proc.kill()
                await run.proc.wait()


async def churn(args: argparse.Namespace, command: list[str], runs: list[ServerRun], notes: list[str]) -> int:
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    warmup = min(args.warmup, seconds / 5)
    began = time.monotonic()
    runner = Soak(args, began + seconds)
    lanes = [
        asyncio.create_task(runner.lane(run, lane, worker))
        for run in runs
        for lane in LANES
        if lane.tls or run.name != "tls"
        for worker in range(lane.workers)
    ]
    await asyncio.sleep(warmup)
    for run in runs:
        run.rss_start = rss(run.proc.pid)[0]
    while time.monotonic() < began + seconds:
        await asyncio.sleep(min(10.0, began + seconds - time.monotonic()))
        done = len(runner.results)
        errors = sum(bool(r.errors) for r in runner.results)
        memory = ", ".join(f"{run.name} {mib(rss(run.proc.pid)[0])}" for run in runs)
        print(
            f"{time.monotonic() - began:6.0f} s  {done:,} clients, {errors} with errors; RSS {memory}", file=sys.stderr
        )
    await asyncio.gather(*lanes)
    elapsed = time.monotonic() - began  # the churn, and the last clients finishing
    for run in runs:
        run.cpu = cpu_seconds(run.proc.pid)
    troubles = [await stop_server(run) for run in runs]
    accounts = [settle(run, runner.results) for run in runs]
    wrong = [w for run, acc, t in zip(runs, accounts, troubles, strict=True) for w in verdicts(run, acc, t)]

    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"\nSoak: {seconds / 60:g} min of churn ({elapsed:.0f} s with the last clients finishing) against "
        f"`{shlex.join(command)} --headless --json --write-timeout {WRITE_TIMEOUT:g}` (and `--tls-self-signed`), "
        f"at most {args.max_clients} clients at once; "
        f"the soak's own CPU {usage.ru_utime + usage.ru_stime:.0f} s\n"
    )
    print("\n".join(table(runs, accounts, elapsed, warmup)))
    if runner.fingerprints:
        shown = ", ".join(f"{n:,} {how}" for how, n in runner.fingerprints.items())
        print(f"\nTLS server certificate: {shown}.")
    for note in notes:
        print(f"\nNote: {note}")
    for acc in accounts:
        for line in (acc.echo_errors + acc.mismatches)[:10]:
            print(f"  {line}", file=sys.stderr)
    if wrong:
        print("\nFAILED:\n" + "\n".join(f"- {w}" for w in wrong))
        return 1
    print("\nOK: every echoed byte checked, every count matches.")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the churn lasts (default 10)")
    parser.add_argument("--seconds", type=float, help="the same in seconds, for short trials (overrides --minutes)")
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds before the start RSS (at most 1/5 of the run)"
    )
    parser.add_argument("--max-clients", type=int, default=200, help="clients at once, over both servers (default 200)")
    parser.add_argument(
        "--tui-echo",
        default=str(TUI_ECHO),
        metavar="COMMAND",
        help="command (prefix) that runs tui-echo, e.g. another build's path (default: this venv's)",
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
