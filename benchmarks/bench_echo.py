"""Echo throughput and p99 latency of tui-echo --headless against two baselines.

Servers, alternated in one run so that the machine's drift hits all alike:
  * tui-echo --headless (its log read from a pipe and thrown away),
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

    def start(self) -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen(
            self.command,
            stdout=subprocess.DEVNULL if self.port_on_stderr else subprocess.PIPE,
            stderr=subprocess.PIPE if self.port_on_stderr else subprocess.DEVNULL,
            text=True,
        )
        stream = proc.stderr if self.port_on_stderr else proc.stdout
        assert stream is not None
        first = stream.readline()
        port = int(first.split("listening on 127.0.0.1:")[1].split()[0] if "listening on" in first else first)
        # Keep reading what it writes, as a terminal or log collector would.
        threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
        return proc, port


SERVERS = [
    Server("tui-echo --headless", [str(TUI_ECHO), "--headless", "--port", "0"]),
    Server("bare trio serve_tcp", [sys.executable, str(HERE / "bare_trio_server.py"), "0"]),
    Server("thread-per-client", [sys.executable, str(HERE / "thread_server.py"), "0"], port_on_stderr=True),
]


def measure(loadgen: Path, server: Server, connections: int, seconds: float) -> dict[str, float]:
    proc, port = server.start()
    try:
        done = subprocess.run(
            [str(loadgen), "127.0.0.1", str(port), str(connections), str(seconds), "1", "64"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        return json.loads(done.stdout)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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

    def median(name: str, connections: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(name, connections)])

    print(
        f"\nmedian of {args.rounds} rounds, {args.seconds:g} s each, 64-byte messages, one in flight per connection\n"
    )
    print(
        "| connections | tui-echo --headless msgs/s (p99) | bare trio msgs/s (p99) | thread-per-client msgs/s (p99) "
        "| headless / bare trio | headless / threads |"
    )
    print("|---|---|---|---|---|---|")
    for connections in levels:
        cells = []
        for server in SERVERS:
            rate = median(server.name, connections, "msgs_per_s")
            p99 = median(server.name, connections, "p99_us") / 1000
            cells.append(f"{rate:,.0f} ({p99:.1f} ms)")
        ours = median(SERVERS[0].name, connections, "msgs_per_s")
        trio_rate = median(SERVERS[1].name, connections, "msgs_per_s")
        threads = median(SERVERS[2].name, connections, "msgs_per_s")
        print(f"| {connections} | {' | '.join(cells)} | {ours / trio_rate:.2f}x | {ours / threads:.2f}x |")


if __name__ == "__main__":
    main()
