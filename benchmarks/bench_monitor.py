"""What the monitor costs the echo, and how fast it answers a key, measured as a user sees it.

The real `tui-echo` runs in a real terminal (a tmux pane, 120x40), once with
the monitor and once `--headless` (its log going to the same kind of
terminal), alternated within each round so that the machine's drift hits both
alike. The load client is loadgen.c: one epoll thread in C, closed loop, one
64-byte message in flight per connection; it uses well under a core, so the
server stays the bottleneck (the monitor and headless both use one core).

Throughput is measured with nothing else running. For the monitor, the same
load then runs a second time, not counted, to measure:
  * keypress latency: `p` is sent --presses times (default 100, so that p99 is
    not just the worst of a handful) with tmux send-keys while the load runs,
    each --gap seconds after the last one showed, and the pane is polled until
    the feed's title shows PAUSED (and, at the next press, until it no longer
    does); the figure includes tmux's own delay and the polling's (a
    capture-pane every 2 ms). p50, p99 and max are over every press of every
    round;
  * numbers settle: after the load stops, how long until the stats bar's
    message count stops changing, i.e. how old the numbers on screen can be.

usage: python benchmarks/bench_monitor.py [--rounds 3] [--seconds 4] [--levels 100,1000] [--presses 100]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import TUI_ECHO, WARMUP_SECONDS, build_loadgen, load_average  # noqa: E402

WIDTH, HEIGHT = 120, 40
KEY_TIMEOUT_SECONDS = 5.0
_LISTENING = re.compile(r"listening (?:on )?127\.0\.0\.1:(\d+)")
_MESSAGES = re.compile(r"messages (\S+) ·")


class Pane:
    """One tmux server with one pane running a command, for this benchmark alone."""

    _count = 0

    def __init__(self, command: list[str]) -> None:
        Pane._count += 1
        self.socket = f"bench-monitor-{os.getpid()}-{Pane._count}"
        shell_command = " ".join(map(shlex.quote, command))
        self._tmux("new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), shell_command)
        self.pid = int(self._tmux("display", "-p", "#{pane_pid}"))

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p")

    def styled_screen(self) -> str:
        """The screen with its colours and styles, as escape sequences."""
        return self._tmux("capture-pane", "-p", "-e")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 15.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = pattern.search(self.screen())
            if match:
                return match
            time.sleep(0.02)
        raise TimeoutError(f"{pattern.pattern!r} not on screen:\n{self.screen()}")

    def close(self) -> None:
        """Close the terminal (tui-echo gets SIGHUP) and wait until the process is gone."""
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if Path(f"/proc/{self.pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                    return  # finished; only its exit status is left
            except FileNotFoundError:
                return
            time.sleep(0.05)


def keypress_latencies(pane: Pane, presses: int, gap: float) -> list[float]:
    latencies = []
    for press in range(presses):
        want_paused = press % 2 == 0
        pane.keys("p")
        start = time.monotonic()
        while ("PAUSED" in pane.screen()) != want_paused:
            if time.monotonic() - start > KEY_TIMEOUT_SECONDS:
                raise TimeoutError("the keypress never showed")
            time.sleep(0.002)
        latencies.append(time.monotonic() - start)
        time.sleep(gap)
    if presses % 2:
        pane.keys("p")  # leave the feed running, as found
    return latencies


def settle_time(pane: Pane, load_end: float) -> float:
    """Seconds from the end of the load until the message count on screen stops changing."""
    last, changed_at = None, load_end
    while time.monotonic() - changed_at < 1.5:
        match = _MESSAGES.search(pane.screen())
        value = match.group(1) if match else None
        if value != last:
            last, changed_at = value, time.monotonic()
        time.sleep(0.01)
    return max(changed_at - load_end, 0.0)


def start_load(loadgen: Path, port: str, connections: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(loadgen), "127.0.0.1", port, str(connections), str(seconds), str(WARMUP_SECONDS), "64"],
        stdout=subprocess.PIPE,
        text=True,
    )


@dataclass
class Run:
    msgs_per_s: float
    key_seconds: list[float] = field(default_factory=list)  # monitor only
    settle_ms: float = 0.0


def run_once(loadgen: Path, monitor: bool, connections: int, seconds: float, presses: int, gap: float) -> Run:
    command = [str(TUI_ECHO), "--port", "0"] + ([] if monitor else ["--headless"])
    pane = Pane(command)
    try:
        port = pane.wait_for(_LISTENING).group(1)
        # Throughput first, with nothing else running: polling the pane costs CPU too.
        out, _ = start_load(loadgen, port, connections, seconds).communicate(timeout=seconds + 60)
        result = Run(float(json.loads(out)["msgs_per_s"]))
        if monitor:
            # Then the same load again, not counted, while keys are pressed and the screen is read. It is
            # meant to outlast the presses (each takes the gap plus its latency) and is stopped after them.
            longest = presses * (gap + KEY_TIMEOUT_SECONDS)
            load = start_load(loadgen, port, connections, longest)
            try:
                time.sleep(WARMUP_SECONDS + 0.5)
                result.key_seconds = keypress_latencies(pane, presses, gap)
                if load.poll() is not None:
                    raise RuntimeError("the load ended before the keypresses did")
            finally:
                load.send_signal(signal.SIGTERM)
                load.communicate(timeout=60)
            result.settle_ms = settle_time(pane, time.monotonic()) * 1000
        return result
    finally:
        pane.close()


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), nearest rank: with 100 values p99 is the second worst, not the worst."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--levels", default="100,1000")
    parser.add_argument("--presses", type=int, default=100, help="keypresses per monitor run (default 100)")
    parser.add_argument("--gap", type=float, default=0.15, help="seconds between a key showing and the next press")
    args = parser.parse_args()
    if not TUI_ECHO.exists():
        sys.exit(f"{TUI_ECHO} not found: run `make run` or pip install -e . first")
    loadgen = build_loadgen()
    load_before = load_average()
    levels = [int(x) for x in args.levels.split(",")]
    results: dict[tuple[bool, int], list[Run]] = {}
    for round_no in range(args.rounds):
        for connections in levels:
            for monitor in (round_no % 2 == 0, round_no % 2 == 1):
                result = run_once(loadgen, monitor, connections, args.seconds, args.presses, args.gap)
                results.setdefault((monitor, connections), []).append(result)
                keys = [s * 1000 for s in result.key_seconds]
                extra = (
                    f"  {len(keys)} keys p50 {percentile(keys, 50):.0f} ms p99 {percentile(keys, 99):.0f} ms"
                    f" max {max(keys):.0f} ms  settle {result.settle_ms:.0f} ms"
                    if monitor
                    else ""
                )
                name = "monitor" if monitor else "headless"
                print(
                    f"round {round_no + 1} {connections:>5} conns  {name:<8} {result.msgs_per_s:>9.0f} msgs/s{extra}",
                    flush=True,
                )

    def median(monitor: bool, connections: int, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in results[(monitor, connections)])

    print(
        f"\n{datetime.now():%Y-%m-%d}, {os.cpu_count()} cores, load average {load_before} before and "
        f"{load_average()} after; median of {args.rounds} rounds, {args.seconds:g} s each, 64-byte messages, "
        f"one in flight per connection; keypresses: {args.presses} a round, all rounds together\n"
    )
    print(
        "| connections | headless msgs/s | monitor msgs/s | monitor / headless "
        "| keypresses | keypress p50 | p99 | max | numbers settle |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for connections in levels:
        headless, monitor = median(False, connections, "msgs_per_s"), median(True, connections, "msgs_per_s")
        keys = [s * 1000 for r in results[(True, connections)] for s in r.key_seconds]
        print(
            f"| {connections} | {headless:,.0f} | {monitor:,.0f} | {monitor / headless:.2f}x | {len(keys)} "
            f"| {percentile(keys, 50):.0f} ms | {percentile(keys, 99):.0f} ms | {max(keys):.0f} ms "
            f"| {median(True, connections, 'settle_ms'):.0f} ms |"
        )


if __name__ == "__main__":
    main()
