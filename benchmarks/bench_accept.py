"""Accept under load: how long a busy server takes to serve a crowd of new clients.

Per run: a fresh server; --connections clients in a closed echo loop (64-byte
messages, one in flight each) until every one of them has had its first echo,
then 1 s of warmup; then --burst MORE clients connect at once, each sends one
byte and waits for its echo. The figure is the time from the burst's first
connect() until the last of its echoes arrived ("all served"); a burst not
fully served within --limit seconds is reported as a timeout. Both loads come
from loadgen.c (one epoll thread in C, so the client is not the bottleneck).
While the burst waits, `ss` is sampled every 50 ms for the listening socket's
Recv-Q (connections the kernel has completed but the server has not accepted
yet) against its Send-Q (the backlog; beyond it the kernel drops SYNs and the
clients retry after 1 s, 3 s, 7 s...).

Servers alternate within each round (keys as in bench_echo.py; default
tui-echo,threads,trio). Compare builds with --tui-echo / --compare-tui-echo.

usage: python benchmarks/bench_accept.py [--rounds 3] [--connections 1000] [--burst 1000] [--limit 30]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_echo import (  # noqa: E402
    WARMUP_SECONDS,
    Server,
    add_server_arguments,
    build_loadgen,
    rotated,
    selected_servers,
    started,
)

SS_INTERVAL = 0.05


@dataclass(frozen=True)
class Burst:
    served_s: float  # math.inf when not all were served within the limit
    served: int
    p50_s: float
    base_all_served_s: float  # how long the first --connections took to be served
    base_msgs_per_s: float  # the busy clients' echo rate while the burst came in
    peak_recv_q: int
    backlog: int


def sample_accept_queue(port: int, stop: threading.Event, peaks: list[int]) -> None:
    """Keeps [peak Recv-Q, Send-Q] of the listening socket up to date until `stop` is set."""
    while not stop.wait(SS_INTERVAL):
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
        if len(out) >= 3:
            peaks[0] = max(peaks[0], int(out[1]))
            peaks[1] = int(out[2])


def run(loadgen: Path, server: Server, connections: int, burst: int, limit: float) -> Burst | str:
    """One run; a str says why there was nothing to measure."""
    with started(server) as running:
        # Measure 1 s at least; loadgen keeps measuring until the burst is served or the limit is hit.
        args = [str(connections), "1", str(WARMUP_SECONDS), "64", str(limit), str(burst)]
        load = subprocess.Popen(
            [str(loadgen), "127.0.0.1", str(running.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert load.stderr is not None
        peaks = [0, 0]
        stop = threading.Event()
        sampler = threading.Thread(target=sample_accept_queue, args=(running.port, stop, peaks))
        if load.stderr.readline().strip() == "burst":  # EOF instead: the base load failed
            sampler.start()
        try:
            out, err = load.communicate(timeout=2 * limit + WARMUP_SECONDS + 60)
        finally:
            stop.set()
            if sampler.is_alive():
                sampler.join()
    if load.returncode == 3:
        return f"base load never established: {json.loads(out)['error']}"
    if load.returncode != 0:
        raise RuntimeError(f"loadgen failed ({load.returncode}): {err.strip()}")
    result = json.loads(out)
    return Burst(
        served_s=math.inf if result["burst_s"] is None else result["burst_s"],
        served=result["burst_served"],
        p50_s=math.inf if result["burst_p50_s"] is None else result["burst_p50_s"],
        base_all_served_s=result["all_first_echo_s"],
        base_msgs_per_s=result["msgs_per_s"],
        peak_recv_q=peaks[0],
        backlog=peaks[1],
    )


def seconds(value: float, limit: float) -> str:
    return f"timeout (> {limit:g} s)" if math.isinf(value) else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=1000, help="busy clients already there")
    parser.add_argument("--burst", type=int, default=1000, help="new clients arriving at once")
    parser.add_argument("--limit", type=float, default=30.0, help="seconds before a load counts as not served")
    add_server_arguments(parser, "tui-echo,threads,trio")
    args = parser.parse_args()
    servers = selected_servers(args)
    loadgen = build_loadgen()
    runs: dict[str, list[Burst | str]] = {server.key: [] for server in servers}
    for round_no in range(args.rounds):
        for server in rotated(servers, round_no):
            b = run(loadgen, server, args.connections, args.burst, args.limit)
            runs[server.key].append(b)
            shown = (
                f"all served {seconds(b.served_s, args.limit)} ({b.served}/{args.burst}), median {b.p50_s:.3f} s, "
                f"peak Recv-Q {b.peak_recv_q}/{b.backlog}; base: all served {b.base_all_served_s:.2f} s, "
                f"{b.base_msgs_per_s:,.0f} msgs/s"
                if isinstance(b, Burst)
                else f"FAILED: {b}"
            )
            print(f"round {round_no + 1}  {server.name:<28} {shown}", flush=True)

    print(
        f"\nmedian of {args.rounds} rounds: {args.burst} new clients arrive at once while {args.connections} "
        f"are busy (64-byte echo, one in flight each); time until every new client had its echo\n"
    )
    print(
        "| server | burst all served s | burst median client s | peak Recv-Q / backlog "
        f"| first {args.connections} all served s | busy msgs/s meanwhile | failed rounds |"
    )
    print("|---|---|---|---|---|---|---|")
    for server in servers:
        done = [b for b in runs[server.key] if isinstance(b, Burst)]
        failed = [b for b in runs[server.key] if isinstance(b, str)]
        note = f"{len(failed)}: {failed[0]}" if failed else "0"
        if not done:
            print(f"| {server.name} | - | - | - | - | - | {note} |")
            continue
        print(
            f"| {server.name} | {seconds(statistics.median(b.served_s for b in done), args.limit)} "
            f"| {seconds(statistics.median(b.p50_s for b in done), args.limit)} "
            f"| {max(b.peak_recv_q for b in done)} / {done[0].backlog} "
            f"| {statistics.median(b.base_all_served_s for b in done):.2f} "
            f"| {statistics.median(b.base_msgs_per_s for b in done):,.0f} | {note} |"
        )


if __name__ == "__main__":
    main()
