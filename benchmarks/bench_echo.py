"""Echo throughput, p99 latency and time-to-serve of tui-echo --headless against the servers a Python user would pick.

Servers (keys for --servers), alternated within each round so that the machine's drift hits all alike:
  tui-echo          tui-echo --headless (the figure the others are compared with)
  tui-echo-json     tui-echo --headless --json, its log read from a pipe and counted
  tui-echo-old      a second tui-echo build, with --compare-tui-echo
  trio              bare trio: serve_tcp + SocketStream (bare_trio_server.py)
  trio-lowlevel     trio's floor for one task per client: a raw socket, recv/send, one yield per chunk and
                    nothing else (trio_lowlevel_server.py): tui-echo's hot loop without counts, events or checks
  trio-lowlevel-wait  the same, waiting for readability after each echo (the loop before that was changed)
  threads           the classic thread-per-client teaching server printing to /dev/null (thread_server.py)
  asyncio-streams   asyncio start_server, read(65536)/write/drain (asyncio_streams_server.py)
  asyncio-protocol  asyncio Protocol, data_received -> transport.write (asyncio_protocol_server.py)
  uvloop            the same Protocol on uvloop (needs `pip install uvloop`)
  socat             socat TCP-LISTEN:PORT,fork,backlog=4096 EXEC:cat (a process pair per client)
  c-epoll           the machine's ceiling: a minimal echo server in C, one thread, level-triggered epoll
                    (c_epoll_server.c, built here with gcc like loadgen.c)
  NAME              any --server-cmd NAME=COMMAND
Load: loadgen.c, one epoll thread in C, closed loop (one message in flight per
connection), built here with gcc, in one of two patterns (--pattern; see loadgen.c): steady
(level-triggered, epoll_ctl when what it waits for changes) or eager (edge-triggered, registered once,
drains each socket, epoll_wait without a timeout). A server's standing can depend on the pattern.
Its clock starts only once every connection has had its first echo ("all served" below: how long
that took); a server that leaves a connection unserved past --first-echo-limit is reported as failed.

Two builds of tui-echo, alternated in one run (A/B; A/A with the same build twice shows the noise):
  --tui-echo git:i16-server --compare-tui-echo git:main --servers tui-echo
git:REF is that commit of this repository, exported (git archive) to benchmarks/build/checkouts/
and run by this interpreter with PYTHONPATH set to it. A command works too, e.g.
  --compare-tui-echo "env PYTHONPATH=/tmp/old /work/main/.venv/bin/python -m tui_echo"
(--headless --port 0 and then --tui-echo-args are appended to either tui-echo command; servers run
in benchmarks/build, so use absolute paths). --tui-echo-args gives both builds the same flags, e.g.
echo with one reply rule that loadgen's messages never match (so each is tried, then echoed):
  --tui-echo-args "--framing line --rule 'PING (\\d+) => PONG {1}\\n'"
(a single flag needs the =, as in --tui-echo-args=--json: argparse takes a lone word that starts
with -- for an option of its own; --tui-echo-flags is the same option)
Every round's figures are printed as it runs and tabled at the end, with the ratio of the two builds
per round, in msgs/s and per CPU-second of the server (msgs/s over its CPU share: on a busy machine
this varies much less, as it discounts the CPU that others' work took from the server in that round).
With a compared build or --tui-echo-args, the tables go to benchmarks/build/ and no chart is drawn,
unless --table or --chart say otherwise (the README's files stay as they are).

usage: python benchmarks/bench_echo.py [--rounds 3] [--seconds 2] [--levels 1,100,1000] [--sizes 64]
                                       [--servers tui-echo,trio,...|all] [--full]
The full matrix (64 B at 1, 100, 1000 connections; 1, 10, 100 KiB at 100), every server:
       python benchmarks/bench_echo.py --full --servers all

Besides the tables on stdout it writes them, with the date and the machine's load, to --table
(default benchmarks/results/bench_echo.md, which README.md's Performance section quotes), and draws
them as one chart, a panel per case, to --chart (default assets/bench.svg; needs matplotlib, in the
`bench` extra). "server CPU" is the server process's own CPU time (all its threads) over the measured
seconds: msgs/s ÷ server CPU is what one core of that server does, the figure multi-process serving
would multiply.
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
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
TUI_ECHO = Path(sys.executable).with_name("tui-echo")
WARMUP_SECONDS = 1.0
# The full matrix: (message bytes, connections).
# `make bench` compares with the servers of the design notes' table; --servers all adds the rest.
DEFAULT_SERVERS = "tui-echo,tui-echo-json,trio,threads,asyncio-streams,uvloop"
FULL_MATRIX = [(64, 1), (64, 100), (64, 1000), (1024, 100), (10240, 100), (102400, 100)]
RESULTS = HERE / "results"
CPU_SAMPLE_SECONDS = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def build_c(name: str) -> Path:
    """benchmarks/NAME.c built into benchmarks/build/NAME, when the source is newer."""
    binary = BUILD / name
    source = HERE / f"{name}.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        gcc = shutil.which("gcc") or sys.exit(f"gcc is needed to build {source.name}")
        BUILD.mkdir(exist_ok=True)
        subprocess.run([gcc, "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


def build_loadgen() -> Path:
    return build_c("loadgen")


def exported(ref: str) -> Path:
    """The tree of commit REF of this repository, exported once to benchmarks/build/checkouts/SHA."""
    repo = HERE.parent
    found = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"], capture_output=True, text=True
    )
    if found.returncode != 0:
        sys.exit(f"git:{ref}: not a commit of {repo}")
    sha = found.stdout.strip()
    tree = BUILD / "checkouts" / sha
    if not (tree / "tui_echo").is_dir():
        partial = tree.with_name(sha + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(repo), "archive", sha], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        partial.rename(tree)
    return tree


def tui_echo_command(text: str) -> list[str]:
    """A tui-echo build as a command: git:REF (that commit, on this interpreter), or a command line."""
    if text.startswith("git:"):
        return ["env", f"PYTHONPATH={exported(text[4:])}", sys.executable, "-m", "tui_echo"]
    return shlex.split(text)


@dataclass(frozen=True)
class Server:
    key: str
    name: str
    command: list[str]  # for port_from="fixed", "{port}" in an argument is replaced by a free port picked here
    port_from: Literal["stdout", "stderr", "fixed"] = "stdout"
    missing: str | None = None  # why it cannot run on this machine
    one_process: bool = True  # its process's CPU time is all of its work (not socat's, a process per client)


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
    BUILD.mkdir(exist_ok=True)
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
C_SERVER = "c_epoll_server"


def builtin_servers(tui_echo: list[str], extra: list[str], name: str = "tui-echo --headless") -> list[Server]:
    no_uvloop = None if importlib.util.find_spec("uvloop") else "uvloop is not installed (pip install uvloop)"
    no_socat = None if shutil.which("socat") else "socat is not installed (apt-get install socat)"
    no_gcc = None if shutil.which("gcc") else "gcc is not installed, to build c_epoll_server.c"
    return [
        Server("tui-echo", name, tui_echo + HEADLESS + extra),
        Server("tui-echo-json", f"{name} --json", [*tui_echo, *HEADLESS, "--json", *extra]),
        python_server("trio", "bare trio serve_tcp", "bare_trio_server.py"),
        python_server("trio-lowlevel", "trio low-level, nothing else", "trio_lowlevel_server.py"),
        python_server(
            "trio-lowlevel-wait", "trio low-level, wait after echo", "trio_lowlevel_server.py", "--wait-after-echo"
        ),
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
            one_process=False,
        ),
        Server("c-epoll", "C epoll (one thread)", [str(BUILD / C_SERVER), "0"], missing=no_gcc),
    ]


def add_server_arguments(parser: argparse.ArgumentParser, default_servers: str) -> None:
    parser.add_argument(
        "--servers", default=default_servers, help=f"comma-separated keys, or all (default {default_servers})"
    )
    parser.add_argument(
        "--tui-echo",
        default=str(TUI_ECHO),
        metavar="COMMAND",
        help="command (prefix) that runs tui-echo, or git:REF for a commit of this repository (default: this venv's)",
    )
    parser.add_argument(
        "--compare-tui-echo",
        metavar="COMMAND",
        help="a second tui-echo, alternated with the first: git:REF, or a command such as "
        '"env PYTHONPATH=/tmp/old /abs/python -m tui_echo"',
    )
    parser.add_argument("--name", default="tui-echo --headless", help="the first tui-echo's name in the tables")
    parser.add_argument("--compare-name", default="tui-echo (old)", help="the second's name in the tables")
    parser.add_argument(
        "--tui-echo-args",
        "--tui-echo-flags",  # the same, by the name the i16-server branch gave it
        default="",
        metavar="FLAGS",
        help="server flags for both tui-echo builds (shell words), e.g. \"--framing line --rule 'PING => PONG'\"",
    )
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
    tui_echo = tui_echo_command(args.tui_echo)
    if shutil.which(tui_echo[0]) is None:
        sys.exit(f"{tui_echo[0]} not found: run `make run` or pip install -e . first")
    extra = shlex.split(args.tui_echo_args)
    builtin = builtin_servers(tui_echo, extra, args.name)
    by_key = {server.key: server for server in builtin}
    keys = list(by_key) if args.servers == "all" else args.servers.split(",")
    chosen = []
    for key in keys:
        server = by_key.get(key) or sys.exit(f"unknown server {key!r}; known: {', '.join(by_key)}")
        if server.missing:
            print(f"skipping {server.name}: {server.missing}", file=sys.stderr)
        else:
            chosen.append(server)
            if key == "c-epoll":
                build_c(C_SERVER)
    if args.compare_tui_echo:
        compared = tui_echo_command(args.compare_tui_echo) + HEADLESS + extra
        chosen.append(Server("tui-echo-old", args.compare_name, compared))
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
    server_cpu: float | None  # the server process's CPU seconds per second over the measured window (1.0 = a core)


PATTERNS = ("steady", "eager")  # loadgen.c's two ways to drive the same closed loop


def run_loadgen(
    loadgen: Path, port: int, args: list[str], timeout: float, pattern: str = "steady"
) -> dict[str, float | str | None]:
    """loadgen's JSON; exit status 3 (some connection was never served) comes back as a dict with "error"."""
    done = subprocess.run(
        [str(loadgen), "--pattern", pattern, "127.0.0.1", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode not in (0, 3):
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.strip()}")
    result: dict[str, float | str | None] = json.loads(done.stdout)
    return result


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, and of its live descendants (the workers of
    tui-echo --workers; socat's per-client processes come and go, so socat is not counted at all)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own + sum(cpu_seconds(child) for child in _children(pid))


class CpuSampler:
    """The server's CPU time, sampled in a thread, so that the measured window (loadgen's last SECONDS,
    after the ramp and the warmup, which cost CPU too) can be cut out afterwards."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError, IndexError):
                self.samples.append((time.monotonic(), cpu_seconds(self.pid)))
            if self._stop.wait(CPU_SAMPLE_SECONDS):
                return

    def share(self, start: float, end: float) -> float | None:
        """CPU seconds per second between the samples nearest to start and end."""
        self._stop.set()
        self._thread.join()
        if len(self.samples) < 2:
            return None
        first = min(self.samples, key=lambda sample: abs(sample[0] - start))
        last = min(self.samples, key=lambda sample: abs(sample[0] - end))
        return (last[1] - first[1]) / (last[0] - first[0]) if last[0] > first[0] else None


def measure(
    loadgen: Path, server: Server, connections: int, size: int, seconds: float, limit: float, pattern: str = "steady"
) -> Measured | str:
    """One run against a fresh server process; a str says why nothing was measured."""
    with started(server) as running:
        running.log_lines[0] = 0
        sampler = CpuSampler(running.proc.pid)
        began = time.monotonic()
        args = [str(connections), str(seconds), str(WARMUP_SECONDS), str(size), str(limit)]
        result = run_loadgen(
            loadgen, running.port, args, timeout=limit + WARMUP_SECONDS + seconds + 60, pattern=pattern
        )
        ended = time.monotonic()
        wall = ended - began
        # loadgen measures last and exits at once: its window is the last `seconds` of the run.
        cpu = sampler.share(ended - seconds, ended) if server.one_process else None
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
        server_cpu=cpu,
    )


T = TypeVar("T")


def rotated(items: list[T], round_no: int) -> list[T]:
    """The order for this round: each starts first in turn, so that the machine's drift hits all alike."""
    shift = round_no % len(items)
    return items[shift:] + items[:shift]


@dataclass(frozen=True)
class Summary:
    """One server in one case: medians over the rounds that were measured."""

    server: Server
    msgs_per_s: float
    mib_per_s: float
    p99_ms: float
    all_served_s: float
    server_cpu: float | None
    log_lines_per_s: float
    notes: list[str]


def summarise(servers: list[Server], runs: dict[str, list[Measured | str]]) -> list[Summary | str]:
    """Per server, its medians, or (a str) why no round was measured."""
    summaries: list[Summary | str] = []
    for server in servers:
        measured = [m for m in runs[server.key] if isinstance(m, Measured)]
        failures = [m for m in runs[server.key] if isinstance(m, str)]
        if not measured:
            summaries.append(f"failed: {failures[0]}")
            continue

        def median(attr: str, of: list[Measured] = measured) -> float:
            return float(statistics.median(getattr(m, attr) for m in of))

        cpus = [m for m in measured if m.server_cpu is not None]
        notes = [f"{len(failures)} of {len(runs[server.key])} rounds failed: {failures[0]}"] if failures else []
        errors = sum(m.errors for m in measured)
        if errors:
            notes.append(f"{errors} connection errors")
        if server.key.startswith("tui-echo"):
            notes.append(f"{median('log_lines_per_s'):,.0f} log lines/s")
        summaries.append(
            Summary(
                server=server,
                msgs_per_s=median("msgs_per_s"),
                mib_per_s=median("mib_per_s"),
                p99_ms=median("p99_ms"),
                all_served_s=median("all_served_s"),
                server_cpu=median("server_cpu", cpus) if cpus else None,
                log_lines_per_s=median("log_lines_per_s"),
                notes=notes,
            )
        )
    return summaries


def ours(summaries: list[Summary | str]) -> Summary | None:
    return next((s for s in summaries if isinstance(s, Summary) and s.server.key == "tui-echo"), None)


def case_table(servers: list[Server], summaries: list[Summary | str]) -> list[str]:
    """One Markdown table: a row per server, its ratio to tui-echo --headless."""
    reference = ours(summaries)
    rows = [
        "| server | msgs/s | MiB/s | p99 ms | all served s | server CPU | tui-echo ÷ this | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for server, summary in zip(servers, summaries, strict=True):
        if isinstance(summary, str):
            rows.append(f"| {server.name} | - | - | - | - | - | - | {summary} |")
            continue
        name = f"**{server.name}**" if server.key == "tui-echo" else server.name
        cells = [
            f"{summary.msgs_per_s:,.0f}",
            f"{summary.mib_per_s:,.2f}",
            f"{summary.p99_ms:.2f}",
            f"{summary.all_served_s:.2f}",
            "-" if summary.server_cpu is None else f"{summary.server_cpu:.0%}",
            f"{reference.msgs_per_s / summary.msgs_per_s:.2f}x" if reference else "-",
        ]
        rows.append(f"| {name} | {' | '.join(cells)} | {'; '.join(summary.notes)} |")
    return rows


def per_cpu_second(rate: float, cpu: float | None) -> float | None:
    """What one core of the server does: its rate over its CPU share (None if unknown)."""
    return rate / cpu if cpu else None


def ratios_line(label: str, ratios: list[float]) -> str:
    if not ratios:
        return f"{label}: -"
    low, high = min(ratios), max(ratios)
    return f"{label}: median {statistics.median(ratios):.3f}x, {low:.3f}x to {high:.3f}x over {len(ratios)} rounds"


def round_table(servers: list[Server], by_server: dict[str, list[Measured | str]]) -> list[str]:
    """Every server's msgs/s (and CPU) in every round; if two builds are compared, the first's over the second's,
    in msgs/s and per CPU-second. On a busy machine the second varies much less: it discounts the CPU that
    the others' work took from the server in that round."""
    compared = "tui-echo" in by_server and "tui-echo-old" in by_server
    names = {server.key: server.name for server in servers}
    builds = f"{names.get('tui-echo')} ÷ {names.get('tui-echo-old')}"
    header = [f"{server.name} (CPU)" for server in servers] + (["ratio", "per CPU-second"] if compared else [])
    rows = ["| round | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for index in range(len(by_server[servers[0].key])):
        this = {key: runs[index] for key, runs in by_server.items()}
        measured = [this[server.key] for server in servers]
        cells = [
            f"{m.msgs_per_s:,.0f} ({'-' if m.server_cpu is None else f'{m.server_cpu:.0%}'})"
            if isinstance(m, Measured)
            else "failed"
            for m in measured
        ]
        new, old = this.get("tui-echo"), this.get("tui-echo-old")
        if isinstance(new, Measured) and isinstance(old, Measured):
            ratios.append(new.msgs_per_s / old.msgs_per_s)
            cells.append(f"{ratios[-1]:.3f}x")
            new_core, old_core = (per_cpu_second(m.msgs_per_s, m.server_cpu) for m in (new, old))
            if new_core and old_core:
                cpu_ratios.append(new_core / old_core)
            cells.append(f"{new_core / old_core:.3f}x" if new_core and old_core else "-")
        elif compared:
            cells += ["-", "-"]
        rows.append(f"| {index + 1} | {' | '.join(cells)} |")
    if compared:
        rows += ["", f"- {ratios_line(f'{builds}, msgs/s', ratios)}"]
        rows += [f"- {ratios_line(f'{builds}, per CPU-second', cpu_ratios)}"]
    return rows


def per_core_table(
    servers: list[Server], results: dict[tuple[int, int], list[Summary | str]], size: int = 64
) -> list[str]:
    """msgs/s per server process at each connection count of `size`-byte messages, and per CPU-second."""
    levels = sorted(connections for (s, connections) in results if s == size)
    if not levels:
        return []
    header = " | ".join(f"{c} conns: msgs/s (CPU) | per CPU-second" for c in levels)
    rows = [f"| server (one process) | {header} |", "|---|" + "---|---|" * len(levels)]
    for index, server in enumerate(servers):
        if not server.one_process:
            continue
        cells = []
        for connections in levels:
            summary = results[(size, connections)][index]
            if isinstance(summary, str) or summary.server_cpu is None:
                cells += ["-", "-"]
            else:
                cells.append(f"{summary.msgs_per_s:,.0f} ({summary.server_cpu:.0%})")
                cells.append(f"{summary.msgs_per_s / summary.server_cpu:,.0f}")
        rows.append(f"| {server.name} | {' | '.join(cells)} |")
    return rows


def case_title(size: int, connections: int) -> str:
    shown = f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"
    return f"{shown} messages, {connections} connection{'s' if connections != 1 else ''}"


def draw_chart(
    path: Path, servers: list[Server], results: dict[tuple[int, int], list[Summary | str]], subtitle: str
) -> None:
    """A panel per case, a horizontal bar per server (msgs/s), tui-echo --headless highlighted."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable, crisp
    plt.rcParams["svg.hashsalt"] = "tui-echo"  # stable ids, so an unchanged chart gives no diff
    cases = list(results)
    columns = min(3, len(cases))
    rows = -(-len(cases) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 0.32 * len(servers) * rows + 1.4 * rows + 0.6), squeeze=False
    )
    names = [server.name for server in servers]
    for ax, case in zip(axes.flat, cases, strict=False):
        values = [s.msgs_per_s if isinstance(s, Summary) else 0.0 for s in results[case]]
        colours = ["#d6604d" if server.key == "tui-echo" else "#8fa8c8" for server in servers]
        positions = range(len(servers))
        ax.barh(positions, values, color=colours)
        ax.set_yticks(list(positions), names if case in cases[::columns] else [""] * len(names), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(case_title(*case), fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
        ax.spines[["top", "right"]].set_visible(False)
        top = max(values, default=0.0) or 1.0
        ax.set_xlim(0, top * 1.3)
        for position, (value, summary) in enumerate(zip(values, results[case], strict=True)):
            label = f"{value / 1000:,.1f}k" if isinstance(summary, Summary) else "failed"
            ax.text(value + top * 0.02, position, label, va="center", fontsize=7)
    for ax in axes.flat[len(cases) :]:
        ax.set_visible(False)
    figure.suptitle(f"Echo messages per second, more is better; tui-echo --headless in red\n{subtitle}", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Date": None})  # no timestamp inside: the subtitle says when
    plt.close(figure)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
    parser.add_argument(
        "--table",
        metavar="FILE",
        help=f"write the Markdown tables here ('' for none; default {RESULTS / 'bench_echo.md'}, "
        f"or {BUILD / 'bench_echo_ab.md'} for two builds or --tui-echo-args)",
    )
    parser.add_argument(
        "--chart",
        metavar="FILE",
        help=f"draw the chart here ('' for none; default {HERE.parent / 'assets' / 'bench.svg'}, "
        "or none for two builds or --tui-echo-args)",
    )
    parser.add_argument(
        "--pattern", choices=PATTERNS, default="steady", help="how loadgen.c drives the load (see loadgen.c)"
    )
    add_server_arguments(parser, DEFAULT_SERVERS)
    args = parser.parse_args()
    readme_figures = not (args.compare_tui_echo or args.tui_echo_args or args.tui_echo != str(TUI_ECHO))
    if args.table is None:
        args.table = str(RESULTS / "bench_echo.md" if readme_figures else BUILD / "bench_echo_ab.md")
    if args.chart is None:
        args.chart = str(HERE.parent / "assets" / "bench.svg") if readme_figures else ""
    servers = selected_servers(args)
    loadgen = build_loadgen()
    load_before = load_average()
    if args.full:
        cases = FULL_MATRIX
    else:
        levels = [int(x) for x in args.levels.split(",")]
        cases = list(itertools.product((int(x) for x in args.sizes.split(",")), levels))
    runs: dict[tuple[int, int], dict[str, list[Measured | str]]] = {}
    for round_no in range(args.rounds):
        for size, connections in cases:
            for server in rotated(servers, round_no):
                m = measure(loadgen, server, connections, size, args.seconds, args.first_echo_limit, args.pattern)
                runs.setdefault((size, connections), {}).setdefault(server.key, []).append(m)
                shown = (
                    f"{m.msgs_per_s:>9,.0f} msgs/s  {m.mib_per_s:8.2f} MiB/s  p99 {m.p99_ms:7.2f} ms"
                    f"  all served {m.all_served_s:.2f} s"
                    if isinstance(m, Measured)
                    else f"FAILED: {m}"
                )
                print(f"round {round_no + 1} {size:>6} B {connections:>5} conns  {server.name:<28} {shown}", flush=True)

    conditions = (
        f"{datetime.now():%Y-%m-%d}, {os.cpu_count()} cores, load average {load_before} before and "
        f"{load_average()} after; median of {args.rounds} rounds, {args.seconds:g} s measured each; "
        f"loadgen pattern {args.pattern}"
    )
    results = {case: summarise(servers, by_server) for case, by_server in runs.items()}
    lines = [
        f"Measured {conditions} (after {WARMUP_SECONDS:g} s warmup), one message in flight per connection; "
        "the clock starts once every connection has had its first echo (all served). "
        "tui-echo ÷ this: msgs/s of tui-echo --headless over this server's. "
        "Server CPU: the server process's CPU time per second while measured (100 % = one core)."
        + (f" tui-echo's flags: {args.tui_echo_args}" if args.tui_echo_args else ""),
    ]
    for (size, connections), summaries in results.items():
        lines += ["", f"{case_title(size, connections)}:", "", *case_table(servers, summaries)]
    for (size, connections), by_server in runs.items():
        lines += ["", f"{case_title(size, connections)}, msgs/s per round:", "", *round_table(servers, by_server)]
    per_core = per_core_table(servers, results)
    if per_core:
        lines += ["", "64 B messages, per server process: msgs/s (its CPU), and msgs/s per CPU-second:", ""]
        lines += per_core
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.table:
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text(text)
        print(f"tables written to {args.table}")
    if args.chart:
        if importlib.util.find_spec("matplotlib") is None:
            print("no chart: matplotlib is not installed (pip install -e '.[bench]')", file=sys.stderr)
        else:
            draw_chart(Path(args.chart), servers, results, conditions)
            print(f"chart drawn to {args.chart}")


if __name__ == "__main__":
    main()
