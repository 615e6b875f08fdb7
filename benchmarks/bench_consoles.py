"""Echo throughput of tui-echo --headless with two consoles attached, against the same server with none.

Alternated within each round (none, two; then two, none; ...) so that the
machine's drift hits both alike. The load is loadgen.c (see bench_echo.py):
1000 connections by default, one 64-byte message in flight each. Consoles:
  * attach (default): two real ``tui-echo attach`` monitors, each in its own
    tmux pane of 120x40, drawing the live server;
  * events: two ``tui-echo events --json`` streams read into /dev/null.
The consoles run during the warm-up and the measurement; they get every
event the server sends a console (data capped at a few hundred a second,
counts of the changed clients four times a second).

usage: python benchmarks/bench_consoles.py [--rounds 3] [--seconds 4] [--connections 1000] [--consoles attach|events]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench_echo import HEADLESS, TUI_ECHO, WARMUP_SECONDS, Server, build_loadgen, start

CONSOLES = 2
OURS = Server("tui-echo", "tui-echo --headless", [str(TUI_ECHO), *HEADLESS])


class Consoles:
    def __init__(self, kind: str, port: int) -> None:
        self.kind = kind
        self.processes: list[subprocess.Popen[bytes]] = []
        self.tmux = shutil.which("tmux") or ""
        self.socket = f"bench-consoles-{uuid.uuid4().hex[:8]}"
        if kind == "events":
            for _ in range(CONSOLES):
                self.processes.append(
                    subprocess.Popen([str(TUI_ECHO), "events", str(port), "--json"], stdout=subprocess.DEVNULL)
                )
            time.sleep(2.0)  # each has said hello and has its snapshot
            return
        if not self.tmux:
            sys.exit("tmux is needed for --consoles attach")
        for index in range(CONSOLES):
            command = "new-session" if index == 0 else "new-window"
            self._tmux(
                command, *(["-d", "-x", "120", "-y", "40"] if index == 0 else ["-d"]), f"{TUI_ECHO} attach {port}"
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            screens = [self._tmux("capture-pane", "-p", "-t", f":{index}") for index in range(CONSOLES)]
            if all("attached to pid" in screen for screen in screens):
                return
            time.sleep(0.1)
        sys.exit("the attached consoles did not come up")

    def _tmux(self, *args: str) -> str:
        done = subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True, text=True, check=True)
        return done.stdout

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait()
        if self.kind == "attach":
            subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True)


def measure(loadgen: Path, connections: int, seconds: float, consoles: str | None) -> float:
    running = start(OURS)
    attached = Consoles(consoles, running.port) if consoles else None
    try:
        done = subprocess.run(
            [str(loadgen), "127.0.0.1", str(running.port), str(connections), str(seconds), str(WARMUP_SECONDS), "64"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        return float(json.loads(done.stdout)["msgs_per_s"])
    finally:
        if attached is not None:
            attached.close()
        running.proc.terminate()
        try:
            running.proc.wait(5)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--consoles", choices=["attach", "events"], default="attach")
    args = parser.parse_args()
    loadgen = build_loadgen()
    alone: list[float] = []
    watched: list[float] = []
    for round_no in range(args.rounds):
        order = [None, args.consoles] if round_no % 2 == 0 else [args.consoles, None]
        for consoles in order:
            rate = measure(loadgen, args.connections, args.seconds, consoles)
            (watched if consoles else alone).append(rate)
            label = f"{CONSOLES} consoles ({consoles})" if consoles else "no console"
            print(f"round {round_no + 1}  {label:<22} {rate:>9.0f} msgs/s", flush=True)
    none, two = statistics.median(alone), statistics.median(watched)
    print(f"\n{args.connections} connections, median of {args.rounds} rounds of {args.seconds:g} s")
    print(f"no console: {none:,.0f} msgs/s (range {min(alone):,.0f}-{max(alone):,.0f})")
    print(f"{CONSOLES} consoles ({args.consoles}): {two:,.0f} msgs/s (range {min(watched):,.0f}-{max(watched):,.0f})")
    print(f"with consoles / without: {two / none:.2f}x")


if __name__ == "__main__":
    main()
