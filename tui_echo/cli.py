"""The ``tui-echo`` command line."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version

import trio

from tui_echo.headless.runner import run_headless
from tui_echo.headless.writer import say
from tui_echo.server.binding import ListenError
from tui_echo.server.config import DEFAULT_FEED_LINES, DEFAULT_HOST, DEFAULT_PORT, Framing, ServerConfig
from tui_echo.text import plural

PROG = "tui-echo"
DEFAULT_MAX_CLIENTS = 10_000
_FD_LIMIT_WANTED = 65_536


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line, not argparse's usage block.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole_number(low: int, high: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected a whole number {span}, got {text!r}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _host(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a host name or address, got an empty string")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A multi-client TCP echo server with a live monitor of every connection and message.",
        epilog="Example: tui-echo --port 0, then connect with nc 127.0.0.1 PORT (the monitor shows the port).",
    )
    parser.add_argument(
        "--host",
        type=_host,
        default=DEFAULT_HOST,
        help=f"Address or host name to listen on; 0.0.0.0 or :: listens on every interface (default {DEFAULT_HOST}).",
    )
    parser.add_argument(
        "--port",
        type=_whole_number(0, 65535),
        default=DEFAULT_PORT,
        help=f"TCP port to listen on; 0 picks a free port, shown by the monitor and the log (default {DEFAULT_PORT}).",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="Run without the monitor and write one log line per event to stdout.",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="With --headless: write the log as JSON Lines, one object per event, for jq or a log collector.",
    )
    parser.add_argument(
        "--feed-lines",
        type=_whole_number(1, 100_000),  # a line keeps up to about 1 KiB
        default=DEFAULT_FEED_LINES,
        metavar="N",
        help=f"The monitor's feed keeps the last N lines (default {DEFAULT_FEED_LINES}).",
    )
    parser.add_argument(
        "--max-clients",
        type=_whole_number(1, None),
        default=DEFAULT_MAX_CLIENTS,
        metavar="N",
        help=f"Refuse connections beyond N clients at once, closing them at once (default {DEFAULT_MAX_CLIENTS}).",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="Disconnect a client that has sent nothing for this many seconds (default: never).",
    )
    parser.add_argument(
        "--framing",
        choices=[f.value for f in Framing],
        default=Framing.CHUNK.value,
        help="What counts as one message: each received chunk, as the classic server counts, "
        "or each newline-terminated line; the echo is the same either way (default chunk).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version('tui-echo')}", help="Print the version and exit."
    )
    return parser


def _raise_fd_limit() -> None:
    """Let one process hold thousands of clients: the default soft limit is often 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _FD_LIMIT_WANTED if hard == resource.RLIM_INFINITY else min(hard, _FD_LIMIT_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):  # keep the old limit: accept waits when it runs out
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _silence_stdout() -> None:
    # Whatever still writes to stdout goes nowhere: the interpreter's final flush can neither block nor fail.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _run_monitor(config: ServerConfig, feed_lines: int) -> int:
    # Imported here: headless runs never load Textual.
    from tui_echo.monitor.app import MonitorApp
    from tui_echo.monitor.guest import GuestServer

    server = GuestServer(config)
    server.listen()
    app = MonitorApp(server, feed_lines=feed_lines)
    app.run()
    return app.return_code or 0


def _run_headless(config: ServerConfig, json_lines: bool) -> int:
    # The log is written to stdout's file descriptor by a thread of its own (headless/writer.py), never through
    # sys.stdout: its buffer stays empty, so the interpreter's flush at exit cannot block on a full pipe.
    try:
        outcome = trio.run(run_headless, config, sys.stdout.fileno(), json_lines, sys.stdout.encoding)
    except ListenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if outcome.abandoned:
        # The writer may still be blocked in a write that will never return. The process does not wait
        # for it (a daemon thread), and nothing else may block on stdout either.
        _silence_stdout()
    if outcome.lines_lost and not outcome.reader_gone:
        say(f"{PROG}: {plural(outcome.lines_lost, 'log line')} lost (the log could not take them)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and not args.headless:
        parser.error("--json is for the headless log: add --headless")
    # Textual reads keys from stdin and draws on stderr.
    if not args.headless and not (sys.stdin.isatty() and sys.stderr.isatty()):
        parser.error("the monitor needs a terminal; use --headless to log to a pipe or file")
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_clients=args.max_clients,
        idle_timeout=args.idle_timeout,
        framing=Framing(args.framing),
    )
    _raise_fd_limit()
    if not args.headless:
        try:
            return _run_monitor(config, args.feed_lines)
        except ListenError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
    return _run_headless(config, args.json)
