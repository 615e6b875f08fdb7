"""Echo throughput, p99 latency and time-to-serve of tui-echo --headless against the servers a Python user would pick.

Servers (keys for --servers), alternated within each round so that the machine's drift hits all alike:
  tui-echo          tui-echo --headless (the figure the others are compared with)
  tui-echo-json     tui-echo --headless --json, its log read from a pipe and counted
  tui-echo-old      a second tui-echo build, with --compare-tui-echo
  trio              bare trio: serve_tcp + SocketStream (bare_trio_server.py)
  threads           the classic thread-per-client teaching server printing to /dev/null (thread_server.py)
  asyncio-streams   asyncio start_server, read(65536)/write/drain (asyncio_streams_server.py)
  asyncio-protocol  asyncio Protocol, data_received -> transport.write (asyncio_protocol_server.py)
  uvloop            the same Protocol on uvloop (needs `pip install uvloop`)
  socat             socat TCP-LISTEN:PORT,fork,backlog=4096 EXEC:cat (a process pair per client)
  NAME              any --server-cmd NAME=COMMAND
Load: loadgen.c, one epoll thread in C, closed loop (one message in flight per
connection), built here with gcc. Its clock starts only once every connection
has had its first echo ("all served" below: how long that took); a server that
leaves a connection unserved past --first-echo-limit is reported as failed.

An old build, e.g. a checkout at /tmp/old, is measured alongside the installed one with
  --compare-tui-echo "env PYTHONPATH=/tmp/old /work/main/.venv/bin/python -m tui_echo"
(--headless --port 0 is appended to either tui-echo command; servers run in benchmarks/build,
so use absolute paths).

usage: python benchmarks/bench_echo.py [--rounds 3] [--seconds 2] [--levels 1,100,1000] [--sizes 64]
                                       [--servers tui-echo,trio,...|all] [--full]
The full matrix (64 B at 1, 100, 1000 connections; 1, 10, 100 KiB at 100), every server:
       python benchmarks/bench_echo.py --full --servers all
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
TUI_ECHO = Path(sys.executable).with_name("tui-echo")
WARMUP_SECONDS = 1.0
# The full matrix: (message bytes, connections).
# `make bench` compares with the servers of the design notes' table; --servers all adds the rest.
DEFAULT_SERVERS = "tui-echo,tui-echo-json,trio,threads,asyncio-streams,uvloop"
FULL_MATRIX = [(64, 1), (64, 100), (64, 1000), (1024, 100), (10240, 100), (102400, 100)]


def build_loadgen() -> Path:
    binary = BUILD / "loadgen"
    source = HERE / "loadgen.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        gcc = shutil.which("gcc") or sys.exit("gcc is needed to build the load client")
        BUILD.mkdir(exist_ok=True)
        subprocess.run([gcc, "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


@dataclass(frozen=True)
class Server:
    key: str
    name: str
    command: list[str]  # for port_from="fixed", "{port}" in an argument is replaced by a free port picked here
    port_from: Literal["stdout", "stderr", "fixed"] = "stdout"
    missing: str | None = None  # why it cannot run on this machine


@dataclass
class Running:
    proc: subprocess.Popen[str]
    port: int
    log_lines: list[int] = field(default_factory=lambda: [0])  # lines read after the first, by a reader thread


def free_port() -> int:
    """A port that was free a moment ago, for servers that cannot bind port 0 and report it (socat)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def parse_port(first: str, server: Server) -> int:
    if first.startswith("{"):
        return int(json.loads(first)["port"])
    if "listening on" in first:
        return int(first.split("listening on 127.0.0.1:")[1].split()[0])
    try:
        return int(first)
    except ValueError:
        sys.exit(f"{server.name} did not start (its first line: {first!r}); command: {shlex.join(server.command)}")


def start(server: Server) -> Running:
    port = free_port() if server.port_from == "fixed" else 0
    command = [arg.replace("{port}", str(port)) for arg in server.command]
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE if server.port_from == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if server.port_from == "stderr" else subprocess.DEVNULL,
            text=True,
            # Not the caller's directory: `python -m tui_echo` run from a checkout would import that
            # checkout's tui_echo before the PYTHONPATH of a compared build.
            cwd=BUILD,
            start_new_session=True,  # its own process group, so that stop() also ends socat's per-client children
        )
    except FileNotFoundError:
        sys.exit(f"{server.name}: cannot run {command[0]!r} (servers run in {BUILD}: give absolute paths)")
    if server.port_from == "fixed":
        wait_listening(port)
        return Running(proc, port)
    stream = proc.stderr if server.port_from == "stderr" else proc.stdout
    assert stream is not None
    running = Running(proc, parse_port(stream.readline(), server))

    def drain() -> None:  # read what it writes, as a terminal or log collector would
        for _ in stream:
            running.log_lines[0] += 1

    threading.Thread(target=drain, daemon=True).start()
    return running


def stop(running: Running) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(running.proc.pid, signal.SIGTERM)
    try:
        running.proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(running.proc.pid, signal.SIGKILL)
        running.proc.wait()


@contextlib.contextmanager
def started(server: Server) -> Iterator[Running]:
    running = start(server)
    try:
        yield running
    finally:
        stop(running)


def python_server(key: str, name: str, script: str, *args: str) -> Server:
    return Server(key, name, [sys.executable, str(HERE / script), "0", *args])


HEADLESS = ["--headless", "--port", "0"]


def builtin_servers(tui_echo: list[str]) -> list[Server]:
    no_uvloop = None if importlib.util.find_spec("uvloop") else "uvloop is not installed (pip install uvloop)"
    no_socat = None if shutil.which("socat") else "socat is not installed (apt-get install socat)"
    return [
        Server("tui-echo", "tui-echo --headless", tui_echo + HEADLESS),
        Server("tui-echo-json", "tui-echo --headless --json", [*tui_echo, "--headless", "--json", "--port", "0"]),
        python_server("trio", "bare trio serve_tcp", "bare_trio_server.py"),
        Server("threads", "thread-per-client", [sys.executable, str(HERE / "thread_server.py"), "0"], "stderr"),
        python_server("asyncio-streams", "asyncio streams", "asyncio_streams_server.py"),
        python_server("asyncio-protocol", "asyncio Protocol", "asyncio_protocol_server.py"),
        Server(
            "uvloop",
            "asyncio Protocol on uvloop",
            [sys.executable, str(HERE / "asyncio_protocol_server.py"), "0", "--uvloop"],
            missing=no_uvloop,
        ),
        # socat's default backlog of 5 leaves some of 100 simultaneous clients unserved for 30 s
        # (their SYNs are dropped and retried ever later), which would hide its echo speed.
        Server(
            "socat",
            "socat fork + cat",
            ["socat", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=4096", "EXEC:cat"],
            "fixed",
            missing=no_socat,
        ),
    ]


def add_server_arguments(parser: argparse.ArgumentParser, default_servers: str) -> None:
    parser.add_argument(
        "--servers", default=default_servers, help=f"comma-separated keys, or all (default {default_servers})"
    )
    parser.add_argument(
        "--tui-echo",
        default=str(TUI_ECHO),
        metavar="COMMAND",
        help="command (prefix) that runs tui-echo, e.g. another build's path (default: this venv's)",
    )
    parser.add_argument(
        "--compare-tui-echo",
        metavar="COMMAND",
        help='a second tui-echo, alternated with the first, e.g. "env PYTHONPATH=/tmp/old /abs/python -m tui_echo"',
    )
    parser.add_argument("--compare-name", default="tui-echo (old)", help="its name in the tables")
    parser.add_argument(
        "--server-cmd",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="another server, printing its port as stdout's first line (repeatable)",
    )


def selected_servers(args: argparse.Namespace) -> list[Server]:
    """The servers named by --servers ("all": every built-in one), less those this machine lacks (with a
    note), then the compared build and any --server-cmd: those are always measured, being asked for by command."""
    tui_echo = shlex.split(args.tui_echo)
    if shutil.which(tui_echo[0]) is None:
        sys.exit(f"{tui_echo[0]} not found: run `make run` or pip install -e . first")
    builtin = builtin_servers(tui_echo)
    by_key = {server.key: server for server in builtin}
    keys = list(by_key) if args.servers == "all" else args.servers.split(",")
    chosen = []
    for key in keys:
        server = by_key.get(key) or sys.exit(f"unknown server {key!r}; known: {', '.join(by_key)}")
        if server.missing:
            print(f"skipping {server.name}: {server.missing}", file=sys.stderr)
        else:
            chosen.append(server)
    if args.compare_tui_echo:
        chosen.append(Server("tui-echo-old", args.compare_name, shlex.split(args.compare_tui_echo) + HEADLESS))
    for entry in args.server_cmd:
        name, _, command = entry.partition("=")
        if not command:
            sys.exit(f"--server-cmd wants NAME=COMMAND, got {entry!r}")
        chosen.append(Server(name, name, shlex.split(command)))
    return chosen


@dataclass(frozen=True)
class Measured:
    msgs_per_s: float
    mib_per_s: float
    p99_ms: float
    all_served_s: float  # from the first connect until every connection had its first echo
    errors: int
    log_lines_per_s: float


def run_loadgen(loadgen: Path, port: int, args: list[str], timeout: float) -> dict[str, float | str | None]:
    """loadgen's JSON; exit status 3 (some connection was never served) comes back as a dict with "error"."""
    done = subprocess.run(
        [str(loadgen), "127.0.0.1", str(port), *args], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode not in (0, 3):
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.strip()}")
    result: dict[str, float | str | None] = json.loads(done.stdout)
    return result


def measure(loadgen: Path, server: Server, connections: int, size: int, seconds: float, limit: float) -> Measured | str:
    """One run against a fresh server process; a str says why nothing was measured."""
    with started(server) as running:
        running.log_lines[0] = 0
        began = time.monotonic()
        args = [str(connections), str(seconds), str(WARMUP_SECONDS), str(size), str(limit)]
        result = run_loadgen(loadgen, running.port, args, timeout=limit + WARMUP_SECONDS + seconds + 60)
        wall = time.monotonic() - began
    if "error" in result:
        return f"{result['no_first_echo']}/{connections} never served in {limit:g} s"

    def number(key: str) -> float:
        value = result[key]
        assert isinstance(value, int | float), (key, value)
        return float(value)

    return Measured(
        msgs_per_s=number("msgs_per_s"),
        mib_per_s=number("mib_per_s"),
        p99_ms=number("p99_us") / 1000,
        all_served_s=number("all_first_echo_s"),
        errors=int(number("errors")),
        log_lines_per_s=running.log_lines[0] / wall,
    )


def rotated(servers: list[Server], round_no: int) -> list[Server]:
    shift = round_no % len(servers)
    return servers[shift:] + servers[:shift]


def summary_rows(servers: list[Server], runs: dict[str, list[Measured | str]]) -> list[str]:
    """One table row per server: medians over the rounds that were measured, failures counted."""

    def median(key: str, attr: str) -> float:
        return float(statistics.median(getattr(m, attr) for m in runs[key] if isinstance(m, Measured)))

    have_ours = any(isinstance(m, Measured) for m in runs.get("tui-echo", []))
    rows = []
    for server in servers:
        failures = [m for m in runs[server.key] if isinstance(m, str)]
        if len(failures) == len(runs[server.key]):
            rows.append(f"| {server.name} | - | - | - | - | - | failed: {failures[0]} |")
            continue
        rate = median(server.key, "msgs_per_s")
        cells = [
            f"{rate:,.0f}",
            f"{median(server.key, 'mib_per_s'):,.2f}",
            f"{median(server.key, 'p99_ms'):.2f}",
            f"{median(server.key, 'all_served_s'):.2f}",
            f"{median('tui-echo', 'msgs_per_s') / rate:.2f}x" if have_ours else "-",
        ]
        notes = [f"{len(failures)} of {len(runs[server.key])} rounds failed: {failures[0]}"] if failures else []
        errors = sum(m.errors for m in runs[server.key] if isinstance(m, Measured))
        if errors:
            notes.append(f"{errors} connection errors")
        if server.key.startswith("tui-echo"):
            notes.append(f"{median(server.key, 'log_lines_per_s'):,.0f} log lines/s")
        rows.append(f"| {server.name} | {' | '.join(cells)} | {'; '.join(notes)} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per run (after 1 s warmup)")
    parser.add_argument("--levels", default="1,100,1000", help="connection counts")
    parser.add_argument("--sizes", default="64", help="message sizes in bytes")
    parser.add_argument("--full", action="store_true", help="the full matrix instead: " + str(FULL_MATRIX))
    parser.add_argument(
        "--first-echo-limit",
        type=float,
        default=30.0,  # tui-echo has needed up to 19 s at 1000 connections; the thread server never makes it
        help="seconds every connection may wait for its first echo before the run counts as failed",
    )
    add_server_arguments(parser, DEFAULT_SERVERS)
    args = parser.parse_args()
    servers = selected_servers(args)
    loadgen = build_loadgen()
    if args.full:
        cases = FULL_MATRIX
    else:
        levels = [int(x) for x in args.levels.split(",")]
        cases = list(itertools.product((int(x) for x in args.sizes.split(",")), levels))
    runs: dict[tuple[int, int], dict[str, list[Measured | str]]] = {}
    for round_no in range(args.rounds):
        for size, connections in cases:
            for server in rotated(servers, round_no):
                m = measure(loadgen, server, connections, size, args.seconds, args.first_echo_limit)
                runs.setdefault((size, connections), {}).setdefault(server.key, []).append(m)
                shown = (
                    f"{m.msgs_per_s:>9,.0f} msgs/s  {m.mib_per_s:8.2f} MiB/s  p99 {m.p99_ms:7.2f} ms"
                    f"  all served {m.all_served_s:.2f} s"
                    if isinstance(m, Measured)
                    else f"FAILED: {m}"
                )
                print(f"round {round_no + 1} {size:>6} B {connections:>5} conns  {server.name:<28} {shown}", flush=True)

    print(
        f"\nmedian of {args.rounds} rounds, {args.seconds:g} s measured each (after {WARMUP_SECONDS:g} s warmup), "
        "one message in flight per connection; the clock starts once every connection has had its first echo "
        "(all served); tui-echo ÷ this = msgs/s of tui-echo --headless over this server's"
    )
    for (size, connections), by_server in runs.items():
        print(f"\n{size} B messages, {connections} connections\n")
        print("| server | msgs/s | MiB/s | p99 ms | all served s | tui-echo ÷ this | notes |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(summary_rows(servers, by_server)))


if __name__ == "__main__":
    main()
