"""What the monitor costs the echo, measured as a user sees it.

The real `tui-echo` runs in a real terminal (a tmux pane, 120x40), once with
the monitor and once `--headless` (its log going to the same kind of
terminal), alternated within each round so that the machine's drift hits both
alike. The load client is loadgen.c: one epoll thread in C, closed loop, one
64-byte message in flight per connection; it uses well under a core, so the
server stays the bottleneck (the monitor and headless both use one core).

Throughput is measured with nothing else running. For the monitor, the same
load then runs a second time, not counted, to measure:
  * keypress latency: `p` is sent with tmux send-keys while the load runs, and
    the pane is polled until the feed's title shows PAUSED (and again until it
    no longer does); the figure includes tmux's own delay;
  * numbers settle: after the load stops, how long until the stats bar's
    message count stops changing, i.e. how old the numbers on screen can be.

usage: python benchmarks/bench_monitor.py [--rounds 3] [--seconds 4] [--levels 100,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import TUI_ECHO, WARMUP_SECONDS, build_loadgen  # noqa: E402

WIDTH, HEIGHT = 120, 40
LATENCY_LOAD_SECONDS = 4.0
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


def keypress_latencies(pane: Pane, presses: int) -> list[float]:
    latencies = []
    for press in range(presses):
        want_paused = press % 2 == 0
        pane.keys("p")
        start = time.monotonic()
        while ("PAUSED" in pane.screen()) != want_paused:
            if time.monotonic() - start > 5:
                raise TimeoutError("the keypress never showed")
            time.sleep(0.002)
        latencies.append(time.monotonic() - start)
        time.sleep(0.15)
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


def run_once(loadgen: Path, monitor: bool, connections: int, seconds: float) -> dict[str, float]:
    command = [str(TUI_ECHO), "--port", "0"] + ([] if monitor else ["--headless"])
    pane = Pane(command)
    try:
        port = pane.wait_for(_LISTENING).group(1)
        # Throughput first, with nothing else running: polling the pane costs CPU too.
        out, _ = start_load(loadgen, port, connections, seconds).communicate(timeout=seconds + 60)
        result: dict[str, float] = json.loads(out)
        if monitor:
            # Then the same load again, not counted, while keys are pressed and the screen is read.
            load = start_load(loadgen, port, connections, LATENCY_LOAD_SECONDS)
            time.sleep(WARMUP_SECONDS + 0.5)
            latencies = keypress_latencies(pane, 6)
            load.communicate(timeout=LATENCY_LOAD_SECONDS + 60)
            load_end = time.monotonic()
            result["key_ms_median"] = statistics.median(latencies) * 1000
            result["key_ms_max"] = max(latencies) * 1000
            result["settle_ms"] = settle_time(pane, load_end) * 1000
        return result
    finally:
        pane.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--levels", default="100,1000")
    args = parser.parse_args()
    if not TUI_ECHO.exists():
        sys.exit(f"{TUI_ECHO} not found: run `make run` or pip install -e . first")
    loadgen = build_loadgen()
    levels = [int(x) for x in args.levels.split(",")]
    results: dict[tuple[bool, int], list[dict[str, float]]] = {}
    for round_no in range(args.rounds):
        for connections in levels:
            for monitor in (round_no % 2 == 0, round_no % 2 == 1):
                result = run_once(loadgen, monitor, connections, args.seconds)
                results.setdefault((monitor, connections), []).append(result)
                extra = (
                    f"  key {result['key_ms_median']:.0f} ms (max {result['key_ms_max']:.0f})"
                    f"  settle {result['settle_ms']:.0f} ms"
                    if monitor
                    else ""
                )
                name = "monitor" if monitor else "headless"
                print(
                    f"round {round_no + 1} {connections:>5} conns  {name:<8} "
                    f"{result['msgs_per_s']:>9.0f} msgs/s{extra}",
                    flush=True,
                )

    def median(monitor: bool, connections: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(monitor, connections)])

    print(
        f"\nmedian of {args.rounds} rounds, {args.seconds:g} s each, 64-byte messages, one in flight per connection\n"
    )
    print(
        "| connections | headless msgs/s | monitor msgs/s | monitor / headless "
        "| keypress (median, worst) | numbers settle |"
    )
    print("|---|---|---|---|---|---|")
    for connections in levels:
        headless, monitor = median(False, connections, "msgs_per_s"), median(True, connections, "msgs_per_s")
        worst_key = max(r["key_ms_max"] for r in results[(True, connections)])
        print(
            f"| {connections} | {headless:,.0f} | {monitor:,.0f} | {monitor / headless:.2f}x "
            f"| {median(True, connections, 'key_ms_median'):.0f} ms, {worst_key:.0f} ms "
            f"| {median(True, connections, 'settle_ms'):.0f} ms |"
        )


if __name__ == "__main__":
    main()
