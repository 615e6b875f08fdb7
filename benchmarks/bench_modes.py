"""TLS echo and chat, where loadgen.c cannot go: two tui-echo builds alternated, loaded by `tui-echo load`.

Cases (--cases, default tls,chat):
  tls        tui-echo --headless --tls-self-signed        tui-echo load --tls-insecure (one message in flight each)
  chat       tui-echo --headless --mode chat               tui-echo load --pattern chat (one line out each; the
                                                           rate is lines heard a second: deliveries)
  tls-chat   the chat over TLS
  echo       plain echo, loaded by tui-echo load: a reference for the same client on loadgen.c's path
Every case at every --connections level runs against each build in turn, the builds' order rotated
from round to round, a fresh server each time. The load client is the same for both builds: this
checkout's `tui-echo load` (--load-client), which starts its clock once every connection is served
(TLS: after every handshake and a first echo; chat: once every first line has reached all the others).

Builds are given as in bench_echo.py: --tui-echo and --compare-tui-echo take git:REF (that commit of
this repository, exported to benchmarks/build/checkouts/) or a command; --tui-echo-args adds server
flags to both. For each run it prints the rate, the p99, the server's CPU and the client's CPU over the
client's measured window (100 % = one core): a server near 100 % is the bottleneck; a client near 100 %
means the figure is the client's, and the ratio of the builds understates any difference. Then, per
case, every round's figures with the ratio of the two builds, and the medians.

usage: python benchmarks/bench_modes.py --tui-echo git:i16-server --compare-tui-echo git:main
                                        [--rounds 5] [--seconds 3] [--connections 100,1000] [--cases tls,chat]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import (  # noqa: E402
    HEADLESS,
    TUI_ECHO,
    CpuSampler,
    Server,
    load_average,
    per_cpu_second,
    ratios_line,
    rotated,
    started,
    tui_echo_command,
)


@dataclass(frozen=True)
class Case:
    name: str
    server: list[str]  # server flags
    client: list[str]  # tui-echo load flags
    unit: str


CASES = {
    "tls": Case("TLS echo", ["--tls-self-signed"], ["--tls-insecure"], "msgs/s"),
    "chat": Case("chat", ["--mode", "chat"], ["--pattern", "chat"], "lines heard/s"),
    "tls-chat": Case(
        "chat over TLS",
        ["--mode", "chat", "--tls-self-signed"],
        ["--pattern", "chat", "--tls-insecure"],
        "lines heard/s",
    ),
    "echo": Case("plain echo", [], [], "msgs/s"),
}


@dataclass(frozen=True)
class Measured:
    rate: float
    p99_ms: float
    served_s: float  # until every connection was served (the client's ramp)
    server_cpu: float | None
    client_cpu: float | None


def run_once(server: Server, case: Case, connections: int, args: argparse.Namespace) -> Measured | str:
    """One load against a fresh server; a str says why nothing was measured."""
    client = [*shlex.split(args.load_client), "load"]
    with started(server) as running:
        server_cpu = CpuSampler(running.proc.pid)
        command = [*client, f"127.0.0.1:{running.port}", "-c", str(connections), "-d", str(args.seconds)]
        command += ["--size", str(args.size), "--json", *case.client]
        command += ["--workers", str(args.load_workers)] if args.load_workers > 1 else []
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client_cpu = CpuSampler(proc.pid) if args.load_workers == 1 else None
        out, err = proc.communicate(timeout=args.seconds + 180)
    try:
        result = json.loads(out)
    except json.JSONDecodeError:
        return f"tui-echo load failed ({proc.returncode}): {(err or out).strip()[-300:]}"
    ours = result["tui_echo"]
    if not ours["clean"]:
        return f"not clean: {ours['errors'][:1] or ours}"
    # The client's window in Unix time, as the samplers' monotonic clock.
    offset = time.time() - time.monotonic()
    start, end = ours["measured_from"] - offset, ours["measured_until"] - offset
    return Measured(
        rate=float(result["rps"]),
        p99_ms=float(dict(result["latency_percentiles"])[99]),
        served_s=float(ours["all_first_echo_s"]),
        server_cpu=server_cpu.share(start, end),
        client_cpu=client_cpu.share(start, end) if client_cpu else None,
    )


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def shown(m: Measured | str, unit: str) -> str:
    if isinstance(m, str):
        return f"FAILED: {m}"
    return (
        f"{m.rate:>10,.0f} {unit}  p99 {m.p99_ms:8.2f} ms  served {m.served_s:5.2f} s  "
        f"server CPU {percent(m.server_cpu):>4}  client CPU {percent(m.client_cpu):>4}"
    )


def case_tables(servers: list[Server], runs: dict[str, list[Measured | str]], unit: str) -> list[str]:
    """Every round's rate per build (with the server's and the client's CPU); the first build's over the
    second's, as rates and per server CPU-second (which discounts what the machine's other work took)."""
    compared = len(servers) == 2
    header = [f"{s.name} {unit} (server, client CPU)" for s in servers]
    header += ["ratio", "per CPU-second"] if compared else []
    rows = ["| round | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for index in range(len(runs[servers[0].key])):
        measured = [runs[server.key][index] for server in servers]
        cells = [
            "failed" if isinstance(m, str) else f"{m.rate:,.0f} ({percent(m.server_cpu)}, {percent(m.client_cpu)})"
            for m in measured
        ]
        if compared:
            new, old = measured
            if isinstance(new, Measured) and isinstance(old, Measured):
                ratios.append(new.rate / old.rate)
                new_core, old_core = (per_cpu_second(m.rate, m.server_cpu) for m in (new, old))
                cpu_ratios += [new_core / old_core] if new_core and old_core else []
                cells += [f"{ratios[-1]:.3f}x", f"{new_core / old_core:.3f}x" if new_core and old_core else "-"]
            else:
                cells += ["-", "-"]
        rows.append(f"| {index + 1} | {' | '.join(cells)} |")
    medians = []
    for server in servers:
        rates = [m.rate for m in runs[server.key] if isinstance(m, Measured)]
        medians.append(f"{statistics.median(rates):,.0f}" if rates else "-")
    rows.append(f"| median | {' | '.join(medians)} |" + (" | |" if compared else ""))
    if compared:
        builds = f"{servers[0].name} ÷ {servers[1].name}"
        rows += ["", f"- {ratios_line(f'{builds}, {unit}', ratios)}"]
        rows += [f"- {ratios_line(f'{builds}, per server CPU-second', cpu_ratios)}"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--connections", default="100,1000", help="connection counts (default 100,1000)")
    parser.add_argument("--size", type=int, default=64, help="message (chat: line) bytes")
    parser.add_argument("--cases", default="tls,chat", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--tui-echo", default=str(TUI_ECHO), metavar="BUILD", help="git:REF or a command")
    parser.add_argument("--compare-tui-echo", metavar="BUILD", help="a second build, alternated with the first")
    parser.add_argument("--name", default="tui-echo", help="the first build's name in the tables")
    parser.add_argument("--compare-name", default="tui-echo (old)", help="the second build's name")
    parser.add_argument(
        "--tui-echo-args", "--tui-echo-flags", default="", metavar="FLAGS", help="server flags for both builds"
    )
    parser.add_argument(
        "--load-client",
        default=str(TUI_ECHO),
        metavar="COMMAND",
        help="the tui-echo that runs `load` (default: this venv's, the same for both builds)",
    )
    parser.add_argument("--load-workers", type=int, default=1, help="tui-echo load --workers (not for chat)")
    args = parser.parse_args()
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        sys.exit(f"unknown cases {', '.join(sorted(unknown))}; known: {', '.join(CASES)}")
    extra = shlex.split(args.tui_echo_args)
    builds = [("a", args.name, args.tui_echo)] + (
        [("b", args.compare_name, args.compare_tui_echo)] if args.compare_tui_echo else []
    )
    load_before = load_average()
    levels = [int(x) for x in args.connections.split(",")]
    cases = [(key, connections) for key in args.cases.split(",") for connections in levels]
    runs: dict[tuple[str, int], dict[str, list[Measured | str]]] = {}
    servers_of: dict[str, list[Server]] = {}
    for key in args.cases.split(","):
        case = CASES[key]
        servers_of[key] = [
            Server(build, name, tui_echo_command(command) + HEADLESS + case.server + extra)
            for build, name, command in builds
        ]
    for round_no in range(args.rounds):
        for key, connections in cases:
            case = CASES[key]
            for server in rotated(servers_of[key], round_no):
                m = run_once(server, case, connections, args)
                runs.setdefault((key, connections), {}).setdefault(server.key, []).append(m)
                what = f"round {round_no + 1}  {case.name:<14} {connections:>5} conns  {server.name:<16}"
                print(f"{what} {shown(m, case.unit)}", flush=True)
    print(
        f"\n{datetime.now():%Y-%m-%d}, {os.cpu_count()} cores, load average {load_before} before and "
        f"{load_average()} after; {args.rounds} rounds, {args.seconds:g} s measured each, {args.size}-byte "
        "messages (chat: lines), one in flight (chat: out) per connection; server and client CPU over the "
        "client's measured window (100 % = one core)"
        + (f"; tui-echo flags: {args.tui_echo_args}" if args.tui_echo_args else "")
    )
    for (key, connections), by_build in runs.items():
        case = CASES[key]
        print(f"\n{case.name}, {connections} connections:\n")
        print("\n".join(case_tables(servers_of[key], by_build, case.unit)))


if __name__ == "__main__":
    main()
