"""Echo throughput and p99 latency of tui-echo --headless against two baselines.

Servers, alternated in one run so that the machine's drift hits all alike:
  * tui-echo --headless, and with --json (its log read from a pipe and counted),
  * bare trio: serve_tcp + SocketStream (bare_trio_server.py),
  * the classic thread-per-client teaching server printing to /dev/null (thread_server.py).
Load: loadgen.c, one epoll thread in C, closed loop (one 64-byte message in
flight per connection), built here with gcc.

usage: python benchmarks/bench_echo.py [--rounds 3] [--seconds 3] [--levels 1,100,1000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
TUI_ECHO = Path(sys.executable).with_name("tui-echo")


def build_loadgen() -> Path:
    binary = BUILD / "loadgen"
    source = HERE / "loadgen.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        gcc = shutil.which("gcc") or sys.exit("gcc is needed to build the load client")
        BUILD.mkdir(exist_ok=True)
        subprocess.run([gcc, "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


@dataclass
class Server:
    name: str
    command: list[str]
    port_on_stderr: bool = False


@dataclass
class Running:
    proc: subprocess.Popen[str]
    port: int
    log_lines: list[int]  # [lines read after the first], filled by a reader thread


def start(server: Server) -> Running:
    proc = subprocess.Popen(
        server.command,
        stdout=subprocess.DEVNULL if server.port_on_stderr else subprocess.PIPE,
        stderr=subprocess.PIPE if server.port_on_stderr else subprocess.DEVNULL,
        text=True,
    )
    stream = proc.stderr if server.port_on_stderr else proc.stdout
    assert stream is not None
    first = stream.readline()
    if first.startswith("{"):
        port = json.loads(first)["port"]
    elif "listening on" in first:
        port = int(first.split("listening on 127.0.0.1:")[1].split()[0])
    else:
        port = int(first)
    running = Running(proc, port, [0])

    def drain() -> None:  # read what it writes, as a terminal or log collector would
        for _ in stream:
            running.log_lines[0] += 1

    threading.Thread(target=drain, daemon=True).start()
    return running


SERVERS = [
    Server("tui-echo --headless", [str(TUI_ECHO), "--headless", "--port", "0"]),
    Server("tui-echo --headless --json", [str(TUI_ECHO), "--headless", "--json", "--port", "0"]),
    Server("bare trio serve_tcp", [sys.executable, str(HERE / "bare_trio_server.py"), "0"]),
    Server("thread-per-client", [sys.executable, str(HERE / "thread_server.py"), "0"], port_on_stderr=True),
]
OURS, OURS_JSON, BARE_TRIO, THREADS = SERVERS
WARMUP_SECONDS = 1.0


def measure(loadgen: Path, server: Server, connections: int, seconds: float) -> dict[str, float]:
    running = start(server)
    try:
        done = subprocess.run(
            [str(loadgen), "127.0.0.1", str(running.port), str(connections), str(seconds), str(WARMUP_SECONDS), "64"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        result: dict[str, float] = json.loads(done.stdout)
        result["log_lines_per_s"] = running.log_lines[0] / (seconds + WARMUP_SECONDS)
        return result
    finally:
        running.proc.terminate()
        try:
            running.proc.wait(5)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--levels", default="1,100,1000")
    args = parser.parse_args()
    if not TUI_ECHO.exists():
        sys.exit(f"{TUI_ECHO} not found: run `make run` or pip install -e . first")
    loadgen = build_loadgen()
    levels = [int(x) for x in args.levels.split(",")]
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    for round_no in range(args.rounds):
        for connections in levels:
            order = SERVERS[round_no % len(SERVERS) :] + SERVERS[: round_no % len(SERVERS)]
            for server in order:
                result = measure(loadgen, server, connections, args.seconds)
                results.setdefault((server.name, connections), []).append(result)
                print(
                    f"round {round_no + 1} {connections:>5} conns  {server.name:<22} "
                    f"{result['msgs_per_s']:>9.0f} msgs/s  p99 {result['p99_us'] / 1000:.2f} ms",
                    flush=True,
                )

    def median(server: Server, connections: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(server.name, connections)])

    print(f"\nmedian of {args.rounds} rounds, {args.seconds:g} s each, 64-byte messages, one in flight per connection")
    print("msgs/s (p99 latency); log lines/s for tui-echo\n")
    print("| connections | " + " | ".join(s.name for s in SERVERS) + " | headless / bare trio | headless / threads |")
    print("|---" * (len(SERVERS) + 3) + "|")
    for connections in levels:
        cells = []
        for server in SERVERS:
            rate, p99_ms = median(server, connections, "msgs_per_s"), median(server, connections, "p99_us") / 1000
            cell = f"{rate:,.0f} ({p99_ms:.1f} ms)"
            if server in (OURS, OURS_JSON):
                cell += f", {median(server, connections, 'log_lines_per_s'):.0f} lines/s"
            cells.append(cell)
        ours = median(OURS, connections, "msgs_per_s")
        vs_trio = ours / median(BARE_TRIO, connections, "msgs_per_s")
        vs_threads = ours / median(THREADS, connections, "msgs_per_s")
        print(f"| {connections} | {' | '.join(cells)} | {vs_trio:.2f}x | {vs_threads:.2f}x |")


if __name__ == "__main__":
    main()
