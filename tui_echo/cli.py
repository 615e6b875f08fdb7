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

from tui_echo.consoles import SUBCOMMANDS, SUBCOMMANDS_HELP
from tui_echo.control.listener import ControlSettings
from tui_echo.headless.runner import run_headless
from tui_echo.server.binding import ListenError
from tui_echo.server.config import (
    DEFAULT_FEED_LINES,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WRITE_TIMEOUT,
    Framing,
    ServerConfig,
)

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


def _seconds_or_off(text: str) -> float | None:
    """Seconds above 0, or 0 for "off"."""
    if text.strip() in ("0", "0.0"):
        return None
    return _seconds(text)


def _host(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a host name or address, got an empty string")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A multi-client TCP echo server with a live monitor of every connection and message.",
        epilog="Example: tui-echo --port 0, then connect with nc 127.0.0.1 PORT (the monitor shows the port).\n\n"
        + SUBCOMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "--write-timeout",
        type=_seconds_or_off,
        default=DEFAULT_WRITE_TIMEOUT,
        metavar="SECONDS",
        help="Disconnect a client that takes none of its echo for this many seconds, as a slow reader; "
        f"0 waits for ever (default {DEFAULT_WRITE_TIMEOUT:g}).",
    )
    parser.add_argument(
        "--framing",
        choices=[f.value for f in Framing],
        default=Framing.CHUNK.value,
        help="What counts as one message: each received chunk, as the classic server counts, "
        "or each newline-terminated line; the echo is the same either way (default chunk).",
    )
    control = parser.add_mutually_exclusive_group()
    control.add_argument(
        "--control",
        metavar="PATH",
        help="The control socket consoles attach to (tui-echo attach, events, ctl) "
        "(default $XDG_RUNTIME_DIR/tui-echo/PORT.sock).",
    )
    control.add_argument("--no-control", action="store_true", help="Open no control socket: no console can attach.")
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
    # The reader of stdout is gone; keep the interpreter's final flush quiet.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _run_monitor(config: ServerConfig, feed_lines: int, control: ControlSettings | None) -> int:
    # Imported here: headless runs never load Textual.
    from tui_echo.monitor.app import MonitorApp
    from tui_echo.monitor.guest import GuestServer

    server = GuestServer(config, control)
    server.listen()
    app = MonitorApp(server, feed_lines=feed_lines)
    app.run()
    return app.return_code or 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments and arguments[0] in SUBCOMMANDS:  # before the server's parser: its flags stay as they were
        from tui_echo.consoles.main import run_subcommand

        return run_subcommand(arguments)
    parser = build_parser()
    args = parser.parse_args(arguments)
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
        write_timeout=args.write_timeout,
        framing=Framing(args.framing),
    )
    control = None if args.no_control else ControlSettings(args.control)
    _raise_fd_limit()
    if not args.headless:
        try:
            return _run_monitor(config, args.feed_lines, control)
        except ListenError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
    # Client bytes are escaped, but printable non-ASCII text is kept: never crash on encoding.
    sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        trio.run(run_headless, config, sys.stdout, args.json, control)
    except ListenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        sys.stdout.flush()
    except OSError:  # a closed pipe or a vanished terminal
        _silence_stdout()
    return 0
