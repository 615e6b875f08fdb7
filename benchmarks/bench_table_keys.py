"""The table's own share of a filter keypress and of a go-to at 10,000 rows, in process (no terminal, no server).

`bench_monitor.py --clients 10000` times the keys as a user meets them (tmux, a real server, 1,000 clients
echoing). This times only what the table's view does for them, so that a slow figure there can be split into
the table's work and the rest (Textual's repaint, the event loop shared with the server, the machine):

  * a filter keypress: compile the expression and choose the rows again (one predicate call per row, then
    the sort), for a few kinds of term, and the filter cleared (every row again);
  * a go-to: the row's position found (one search of the shown rows, in C), in the middle and at the end.

usage: python benchmarks/bench_table_keys.py [--clients 10000] [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from bench_echo import load_average

from tui_echo.client_filter import compile_filter
from tui_echo.monitor.models.table import TableModel
from tui_echo.monitor.models.table_view import TableView
from tui_echo.server.clients import ClientState

FILTERS = ("7", ":51234", "10.0.1.", "10.0.2.0/24", "#1234", "kicked", "person 5", "a|b|c", "!tls", "/^#7/")


def states(count: int) -> list[ClientState]:
    """``count`` clients from four addresses, every tenth labelled."""
    return [
        ClientState(
            client_id=n,
            peer=(f"10.0.{n % 4}.{n % 250 + 1}", 1024 + n * 7 % 60000),
            connected_at=1000.0,
            last_activity=1000.0,
            label=f"person {n}" if n % 10 == 0 else "",
        )
        for n in range(1, count + 1)
    ]


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median, p99 and max, in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], times[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    model = TableModel()
    view = TableView(model)
    view.update(model.refresh(states(args.clients), 1000.0, None), 1000.0)
    print(
        f"{args.clients:,} rows, {args.repeats} repeats each; {os.cpu_count()} cores, load average {load_average()}\n"
    )
    print("| what | rows shown | median | p99 | max |\n|---|---|---|---|---|")
    for text in FILTERS:
        median, p99, worst = timed(lambda text=text: view.set_filter(compile_filter(text), 1000.0, text), args.repeats)
        print(f"| filter `{text}` | {view.clients_shown:,} | {median:.1f} ms | {p99:.1f} ms | {worst:.1f} ms |")
    median, p99, worst = timed(lambda: view.set_filter(None, 1000.0), args.repeats)
    print(f"| filter cleared | {view.clients_shown:,} | {median:.1f} ms | {p99:.1f} ms | {worst:.1f} ms |")

    for where, client_id in (("in the middle", args.clients // 2), ("the last", args.clients)):
        median, p99, worst = timed(lambda client_id=client_id: view.index_of(client_id), args.repeats)
        print(f"| go to: {where} row found | {len(view):,} | {median:.2f} ms | {p99:.2f} ms | {worst:.2f} ms |")
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
