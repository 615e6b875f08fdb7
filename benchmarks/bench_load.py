"""How fast `tui-echo load` is: its msgs/s against loadgen.c's on the same server, in one run.

Clients (alternated within each round, as the servers of bench_echo.py are):
  loadgen           benchmarks/loadgen.c: one epoll thread in C, the fastest client we have
  load              tui-echo load (asyncio, one process)
  load --workers 2  tui-echo load with two worker processes
Each run gets a fresh server (keys as in bench_echo.py; default tui-echo, the server the README
talks about, and uvloop, the fastest one, which shows where the client rather than the server is the
ceiling). Every client keeps one message in flight per connection (closed loop) and starts its
clock only once every connection has had its first echo; loadgen warms up for 1 s more.
"client CPU" is the client's CPU time (its worker processes included) per second of its whole run,
start-up included, so it reads low for the short runs: near 100 % (one process) means the client is
the ceiling.

usage: python benchmarks/bench_load.py [--rounds 3] [--seconds 3] [--connections 100] [--size 64]
                                       [--servers tui-echo,uvloop]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import (  # noqa: E402
    TUI_ECHO,
    WARMUP_SECONDS,
    add_server_arguments,
    build_loadgen,
    load_average,
    rotated,
    selected_servers,
    started,
)

CLIENTS = ("loadgen", "load", "load --workers 2")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def client_command(client: str, loadgen: Path, port: int, args: argparse.Namespace) -> list[str]:
    if client == "loadgen":
        return [str(loadgen), "127.0.0.1", str(port), str(args.connections), str(args.seconds)]
    workers = ["--workers", "2"] if client.endswith("--workers 2") else []
    return [
        str(TUI_ECHO),
        "load",
        f"127.0.0.1:{port}",
        "-c",
        str(args.connections),
        "-d",
        str(args.seconds),
        "--size",
        str(args.size),
        "--json",
        *workers,
    ]


def run_client(command: list[str], client: str, args: argparse.Namespace) -> tuple[float, float]:
    """msgs/s, and the client's CPU per second of its run."""
    if client == "loadgen":
        command = [*command, str(WARMUP_SECONDS), str(args.size)]
    cpu, began = children_cpu(), time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds + 120)
    share = (children_cpu() - cpu) / (time.monotonic() - began)
    if done.returncode != 0:
        raise RuntimeError(f"{client} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    result = json.loads(done.stdout)
    return float(result["msgs_per_s"] if client == "loadgen" else result["rps"]), share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--size", type=int, default=64, help="message bytes")
    add_server_arguments(parser, "tui-echo,uvloop")
    args = parser.parse_args()
    servers = selected_servers(args)
    loadgen = build_loadgen()
    load_before = load_average()
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_no in range(args.rounds):
        for server in servers:
            for client in rotated(list(CLIENTS), round_no):
                with started(server) as running:
                    rate, cpu = run_client(client_command(client, loadgen, running.port, args), client, args)
                runs.setdefault((server.key, client), []).append((rate, cpu))
                print(
                    f"round {round_no + 1}  {server.name:<28} {client:<17} {rate:>9,.0f} msgs/s  client CPU {cpu:.0%}",
                    flush=True,
                )
    print(
        f"\n{datetime.now():%Y-%m-%d}, {os.cpu_count()} cores, load average {load_before} before and "
        f"{load_average()} after; median of {args.rounds} rounds, {args.connections} connections, "
        f"{args.size}-byte messages, one in flight each, {args.seconds:g} s measured\n"
    )
    print("| server | client | msgs/s | client CPU | ÷ loadgen |")
    print("|---|---|---|---|---|")
    for server in servers:
        baseline = statistics.median(rate for rate, _ in runs[(server.key, "loadgen")])
        for client in CLIENTS:
            rate = statistics.median(r for r, _ in runs[(server.key, client)])
            cpu = statistics.median(c for _, c in runs[(server.key, client)])
            shown = "`tui-echo " + client + "`" if client != "loadgen" else "loadgen.c"
            print(f"| {server.name} | {shown} | {rate:,.0f} | {cpu:.0%} | {rate / baseline:.2f}x |")


if __name__ == "__main__":
    main()
