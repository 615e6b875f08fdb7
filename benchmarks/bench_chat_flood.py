"""A chat flood with clients that never read: what the one client that does read gets, second by second.

A fresh `tui-echo --headless --mode chat` per run; --never-readers clients connect and never read
(nor close), one reader connects and reads everything as fast as it can, and one sender floods
lines of --line-bytes for --seconds as fast as the server takes them. The reader's MiB/s is
printed for every half second from the flood's start, and the time until it first reaches half of
its rate over the last third of the flood (its steady rate). Builds alternate within each round
(--compare-tui-echo: another build's tui-echo executable, e.g. main's .venv/bin/tui-echo).

usage: python benchmarks/bench_chat_flood.py [--never-readers 300] [--seconds 10] [--rounds 3]
                                             [--line-bytes 1024] [--compare-tui-echo PATH]
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import BUILD, TUI_ECHO, load_average  # noqa: E402

STEP = 0.5
_LISTENING = re.compile(r"listening (?:on )?127\.0\.0\.1:(\d+)")


@dataclass
class Flood:
    rates: list[float]  # the reader's MiB/s in each STEP from the flood's start
    steady: float  # its mean rate over the flood's last third
    to_half: float  # seconds until a STEP first reached half of ``steady``


def flood(tui_echo: Path, never_readers: int, seconds: float, line_bytes: int) -> Flood:
    proc = subprocess.Popen(
        [str(tui_echo), "--headless", "--port", "0", "--mode", "chat"], stdout=subprocess.PIPE, text=True, cwd=BUILD
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = _LISTENING.search(first) or sys.exit(f"tui-echo did not start: {first!r}")
    drain = subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
    address = ("127.0.0.1", int(match.group(1)))
    silent = [socket.create_connection(address) for _ in range(never_readers)]
    reader = socket.create_connection(address)
    sender = socket.create_connection(address)
    received = [0]
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            received[0] += len(reader.recv(1 << 20))

    threading.Thread(target=read, daemon=True).start()
    time.sleep(1.0)  # every join line delivered
    line = b"x" * (line_bytes - 1) + b"\n"
    batch = line * max(1, 65536 // line_bytes)
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            sender.sendall(batch)

    samples: list[int] = []
    base = received[0]
    threading.Thread(target=send, daemon=True).start()
    start = time.monotonic()
    for step in range(1, int(seconds / STEP) + 1):
        time.sleep(max(0.0, start + step * STEP - time.monotonic()))
        samples.append(received[0] - base)
    stop.set()
    done.set()
    for sock in [*silent, reader, sender]:
        sock.close()
    proc.terminate()
    proc.wait(10)
    drain.wait(10)
    rates = [(b - a) / STEP / (1 << 20) for a, b in zip([0, *samples], samples, strict=False)]
    steady = statistics.mean(rates[len(rates) * 2 // 3 :])
    to_half = next(((i + 1) * STEP for i, rate in enumerate(rates) if rate >= steady / 2), float("inf"))
    return Flood(rates, steady, to_half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--never-readers", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--line-bytes", type=int, default=1024)
    parser.add_argument("--compare-tui-echo", type=Path, help="another build's tui-echo executable")
    args = parser.parse_args()
    BUILD.mkdir(exist_ok=True)
    builds = {"this build": TUI_ECHO}
    if args.compare_tui_echo:
        builds["compared"] = args.compare_tui_echo
    load_before = load_average()
    results: dict[str, list[Flood]] = {name: [] for name in builds}
    for round_number in range(args.rounds):
        order = list(builds.items())
        if round_number % 2:
            order.reverse()
        for name, tui_echo in order:
            result = flood(tui_echo, args.never_readers, args.seconds, args.line_bytes)
            results[name].append(result)
            shown = " ".join(f"{rate:.0f}" for rate in result.rates)
            print(f"round {round_number + 1} {name:<10} MiB/s per {STEP:g} s: {shown}", flush=True)
    print(f"\nload average {load_before} before and {load_average()} after\n")
    case = f"{args.never_readers} never-readers, {args.line_bytes} B lines"
    print(f"| {case} | reader in the first second | steady | until half the steady rate |")
    print("|---|---|---|---|")
    for name, floods in results.items():
        first = statistics.median(sum(f.rates[: int(1 / STEP)]) / int(1 / STEP) for f in floods)
        steady = statistics.median(f.steady for f in floods)
        to_half = statistics.median(f.to_half for f in floods)
        print(f"| {name} | {first:.1f} MiB/s | {steady:.1f} MiB/s | {to_half:.1f} s |")


if __name__ == "__main__":
    main()
