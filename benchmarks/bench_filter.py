"""What a filter costs at 10,000 clients: compile an expression and select the rows it matches.

This is the part of a keypress in the monitor's filter prompt (or of `ctl clients --filter`) that
tui_echo.client_filter does; drawing the table is the monitor's (bench_monitor.py). The rows are
real ``ClientState`` objects: 10,000 clients from 40 addresses (250 each), a label on every tenth,
every fifth on TLS, a few closing. Each expression is compiled and applied --runs times (default
200), alternating the expressions within each run so that the machine's drift hits them alike;
the table gives the median, p99 and max in milliseconds. Busy-machine figures say so (load
average printed).

    python benchmarks/bench_filter.py [--clients 10000] [--runs 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from tui_echo.client_filter import compile_filter
from tui_echo.server.clients import ClientState, ClientStatus

EXPRESSIONS = (
    "#1234",
    "1234",
    "10.0.7.",
    "10.0.7.33",
    ":41234",
    "10.0.0.0/22",
    "tls",
    "kicked|closing",
    "alice",
    "!alice|bob",
    "/ali.e [0-9]+/",
)


def rows(count: int) -> list[ClientState]:
    made = []
    for n in range(1, count + 1):
        made.append(
            ClientState(
                client_id=n,
                peer=(f"10.0.{n % 40}.{n % 250}", 40000 + n % 25000),
                connected_at=0.0,
                last_activity=0.0,
                status=ClientStatus.CLOSING if n % 997 == 0 else ClientStatus.CONNECTED,
                tls_version="TLSv1.3" if n % 5 == 0 else None,
                label=f"alice {n}" if n % 10 == 0 else "",
            )
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    table = rows(args.clients)
    times: dict[str, list[float]] = {text: [] for text in EXPRESSIONS}
    matched: dict[str, int] = {}
    for _ in range(args.runs):
        for text in EXPRESSIONS:
            start = time.perf_counter()
            chosen = list(compile_filter(text).select(table))
            times[text].append((time.perf_counter() - start) * 1000)
            matched[text] = len(chosen)
    print(f"{args.clients} clients, {args.runs} runs each; load average {os.getloadavg()[0]:.2f}")
    print("| expression | matches | median ms | p99 ms | max ms |\n|---|---|---|---|---|")
    for text, taken in times.items():
        taken.sort()
        p99 = taken[min(len(taken) - 1, round(0.99 * (len(taken) - 1)))]
        print(f"| `{text}` | {matched[text]} | {statistics.median(taken):.2f} | {p99:.2f} | {taken[-1]:.2f} |")


if __name__ == "__main__":
    main()
