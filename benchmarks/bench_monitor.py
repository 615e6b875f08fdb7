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

Two builds (--compare-tui-echo, as in bench_echo.py: git:REF or a command) are alternated within
each round too, each with its monitor and its own headless; the tables then give, per round, each
build's monitor / headless and the first build's monitor over the second's, and each build's keypress
percentiles. E.g., at 1000 connections, 5 rounds:
  python benchmarks/bench_monitor.py --tui-echo git:i16-server --compare-tui-echo git:main \
      --levels 1000 --rounds 5

With --clients 10000, it measures instead the monitor holding that many clients, 1,000 (--busy) of them
echoing: first paint, keypresses, q to exit (see monitor_at_scale.py), again one build or two alternated.

usage: python benchmarks/bench_monitor.py [--rounds 3] [--seconds 4] [--levels 100,1000] [--presses 100]
                                          [--tui-echo BUILD] [--compare-tui-echo BUILD] [--tui-echo-args FLAGS]
                                          [--clients 10000 [--busy 1000]]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import (  # noqa: E402
    BUILD,
    TUI_ECHO,
    WARMUP_SECONDS,
    CpuSampler,
    build_loadgen,
    load_average,
    per_cpu_second,
    ratios_line,
    rotated,
    tui_echo_command,
)

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
        # Not in a checkout: `python -m tui_echo` would import the directory's tui_echo before a build's PYTHONPATH.
        BUILD.mkdir(exist_ok=True)
        self._tmux("new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(BUILD), shell_command)
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
    cpu: float | None = None  # tui-echo's CPU (server and monitor: one process) per second while measured
    key_seconds: list[float] = field(default_factory=list)  # monitor only
    settle_ms: float = 0.0


@dataclass(frozen=True)
class Build:
    key: str
    name: str
    command: list[str]  # runs tui-echo with the shared flags; --port 0 [--headless] is appended


def run_once(
    loadgen: Path, build: Build, monitor: bool, connections: int, seconds: float, presses: int, gap: float
) -> Run:
    pane = Pane(build.command + ["--port", "0"] + ([] if monitor else ["--headless"]))
    try:
        port = pane.wait_for(_LISTENING).group(1)
        # Throughput first, with nothing else running: polling the pane costs CPU too.
        sampler = CpuSampler(pane.pid)  # tmux's pane runs the command itself (sh and env exec it)
        out, _ = start_load(loadgen, port, connections, seconds).communicate(timeout=seconds + 60)
        ended = time.monotonic()  # loadgen measures last and exits at once
        result = Run(float(json.loads(out)["msgs_per_s"]), sampler.share(ended - seconds, ended))
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


def cpu_text(cpu: float | None) -> str:
    return "-" if cpu is None else f"{cpu:.0%}"


def run_line(result: Run, monitor: bool) -> str:
    rate = f"{result.msgs_per_s:>9.0f} msgs/s  CPU {cpu_text(result.cpu):>4}"
    if not monitor:
        return rate
    keys = [s * 1000 for s in result.key_seconds]
    return (
        f"{rate}  {len(keys)} keys p50 {percentile(keys, 50):.0f} ms "
        f"p99 {percentile(keys, 99):.0f} ms max {max(keys):.0f} ms  settle {result.settle_ms:.0f} ms"
    )


Results = dict[tuple[str, bool, int], list[Run]]  # (build, monitor?, connections): a Run per round


def summary_table(builds: list[Build], levels: list[int], results: Results) -> list[str]:
    def median(key: str, monitor: bool, connections: int, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in results[(key, monitor, connections)]))

    prefix = "| build " if len(builds) > 1 else ""
    rows = [
        f"{prefix}| connections | headless msgs/s | monitor msgs/s | monitor / headless "
        "| keypresses | keypress p50 | p99 | max | numbers settle |",
        "|---" * (10 if len(builds) > 1 else 9) + "|",
    ]
    for build in builds:
        for connections in levels:
            headless = median(build.key, False, connections, "msgs_per_s")
            monitor = median(build.key, True, connections, "msgs_per_s")
            keys = [s * 1000 for r in results[(build.key, True, connections)] for s in r.key_seconds]
            name = f"| {build.name} " if len(builds) > 1 else ""
            rows.append(
                f"{name}| {connections} | {headless:,.0f} | {monitor:,.0f} | {monitor / headless:.2f}x | {len(keys)} "
                f"| {percentile(keys, 50):.0f} ms | {percentile(keys, 99):.0f} ms | {max(keys):.0f} ms "
                f"| {median(build.key, True, connections, 'settle_ms'):.0f} ms |"
            )
    return rows


def rounds_table(builds: list[Build], connections: int, results: Results) -> list[str]:
    """Per round: each build's headless and monitor msgs/s (its CPU) and keypress p99, and the first build's
    over the second's, in msgs/s and per CPU-second (which discounts what the machine's other work took)."""
    first, second = builds
    rows = [
        f"| round | {first.name} headless (CPU) | monitor (CPU) | keys p99 | {second.name} headless (CPU) "
        "| monitor (CPU) | keys p99 | headless ratio | per CPU-second | monitor ratio | per CPU-second |",
        "|---" * 11 + "|",
    ]
    ratios: dict[tuple[bool, bool], list[float]] = {(m, c): [] for m in (False, True) for c in (False, True)}
    for index in range(len(results[(first.key, True, connections)])):
        cells = []
        for build in builds:
            headless, monitor = (results[(build.key, m, connections)][index] for m in (False, True))
            keys = [s * 1000 for s in monitor.key_seconds]
            cells += [f"{r.msgs_per_s:,.0f} ({cpu_text(r.cpu)})" for r in (headless, monitor)]
            cells.append(f"{percentile(keys, 99):.0f} ms")
        for monitor_on in (False, True):
            new, old = (results[(b.key, monitor_on, connections)][index] for b in builds)
            ratios[(monitor_on, False)].append(new.msgs_per_s / old.msgs_per_s)
            cells.append(f"{new.msgs_per_s / old.msgs_per_s:.3f}x")
            new_core, old_core = per_cpu_second(new.msgs_per_s, new.cpu), per_cpu_second(old.msgs_per_s, old.cpu)
            if new_core and old_core:
                ratios[(monitor_on, True)].append(new_core / old_core)
            cells.append(f"{new_core / old_core:.3f}x" if new_core and old_core else "-")
        rows.append(f"| {index + 1} | {' | '.join(cells)} |")
    rows.append("")
    for (monitor_on, per_cpu), values in ratios.items():
        what = f"{first.name} ÷ {second.name}, {'monitor' if monitor_on else 'headless'}"
        rows.append(f"- {ratios_line(what + (', per CPU-second' if per_cpu else ', msgs/s'), values)}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--levels", default="100,1000")
    parser.add_argument("--presses", type=int, default=100, help="keypresses per monitor run (default 100)")
    parser.add_argument("--gap", type=float, default=0.15, help="seconds between a key showing and the next press")
    parser.add_argument("--tui-echo", default=str(TUI_ECHO), metavar="BUILD", help="git:REF or a command")
    parser.add_argument("--compare-tui-echo", metavar="BUILD", help="a second build, alternated with the first")
    parser.add_argument("--name", default="tui-echo", help="the first build's name in the tables")
    parser.add_argument("--compare-name", default="tui-echo (old)", help="the second build's name")
    parser.add_argument(
        "--tui-echo-args", "--tui-echo-flags", default="", metavar="FLAGS", help="server flags for both builds"
    )
    parser.add_argument(
        "--clients", type=int, help="instead: the monitor at this many clients (10000), see monitor_at_scale.py"
    )
    parser.add_argument("--busy", type=int, default=1000, help="with --clients: how many of them echo (loadgen)")
    args = parser.parse_args()
    extra = shlex.split(args.tui_echo_args)
    builds = [Build("a", args.name, tui_echo_command(args.tui_echo) + extra)]
    if args.compare_tui_echo:
        builds.append(Build("b", args.compare_name, tui_echo_command(args.compare_tui_echo) + extra))
    for build in builds:
        if shutil.which(build.command[0]) is None:
            sys.exit(f"{build.command[0]} not found: run `make run` or pip install -e . first")
    loadgen = build_loadgen()
    if args.clients:
        from monitor_at_scale import run_at_scale  # imports this module: only now

        run_at_scale(builds, loadgen, args.clients, args.busy, args.rounds, args.presses, args.gap)
        return
    load_before = load_average()
    levels = [int(x) for x in args.levels.split(",")]
    results: Results = {}
    # Every (build, monitor or headless) takes every place in the round in turn: with two builds, rotating
    # the builds and alternating monitor and headless would put one build's monitor always first or last.
    runs = [(build, monitor) for build in builds for monitor in (True, False)]
    for round_no in range(args.rounds):
        for connections in levels:
            for build, monitor in rotated(runs, round_no):
                result = run_once(loadgen, build, monitor, connections, args.seconds, args.presses, args.gap)
                results.setdefault((build.key, monitor, connections), []).append(result)
                who = f"{build.name:<16} " if len(builds) > 1 else ""
                name = "monitor" if monitor else "headless"
                print(
                    f"round {round_no + 1} {connections:>5} conns  {who}{name:<8} {run_line(result, monitor)}",
                    flush=True,
                )

    print(
        f"\n{datetime.now():%Y-%m-%d}, {os.cpu_count()} cores, load average {load_before} before and "
        f"{load_average()} after; median of {args.rounds} rounds, {args.seconds:g} s each, 64-byte messages, "
        f"one in flight per connection; keypresses: {args.presses} a round, all rounds together"
        + (f"; tui-echo flags: {args.tui_echo_args}" if args.tui_echo_args else "")
        + "\n"
    )
    print("\n".join(summary_table(builds, levels, results)))
    if len(builds) == 2:
        for connections in levels:
            print(f"\n{connections} connections, per round (ratio: {builds[0].name} ÷ {builds[1].name}):\n")
            print("\n".join(rounds_table(builds, connections, results)))


if __name__ == "__main__":
    main()
