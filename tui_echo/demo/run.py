"""``tui-echo demo``: the command line."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from tui_echo.arguments import OneLineParser, whole_number
from tui_echo.demo import script
from tui_echo.monitor.terminal import terminal_problem

PROG = "tui-echo demo"
MIN_SPEED, MAX_SPEED = 0.1, 20.0  # beyond 20 the timeouts (1 s idle) get shorter than a busy machine's hiccups


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"expected a speed from {MIN_SPEED:g} to {MAX_SPEED:g}, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="The monitor with a cast of simulated clients on real TCP connections, from a process "
        "of their own: three chatters, a sensor sending binary frames, a logger that floods now and then, "
        "one who goes quiet (cut off by the idle timeout), one who comes and goes, and one who never reads "
        "his echo (cut off by the write timeout). Kick, send and broadcast as usual; q quits.",
        epilog=f"The demo server has an idle timeout of {script.IDLE_TIMEOUT:g} s and a write timeout of "
        f"{script.WRITE_TIMEOUT:g} s, divided by --speed. Join in with nc 127.0.0.1 PORT (the screen shows it).",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="X",
        help=f"Run the cast and the timeouts X times faster, from {MIN_SPEED:g} to {MAX_SPEED:g} (default 1).",
    )
    parser.add_argument(
        "--port",
        type=whole_number(0, 65535),
        default=0,
        help="TCP port on 127.0.0.1; 0 picks a free one, shown on screen (default 0).",
    )
    return parser


def main(arguments: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(arguments)
    problem = terminal_problem()
    if problem:
        parser.error(f"the demo's monitor needs a terminal, {problem}")
    # Imported here: --help and mistakes stay quick.
    from tui_echo.demo.source import DemoServer
    from tui_echo.monitor.launch import run_monitor

    return run_monitor(DemoServer(args.port, args.speed))
