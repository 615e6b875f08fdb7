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
from tui_echo.server.access import parse_network
from tui_echo.server.binding import ListenError
from tui_echo.server.config import (
    DEFAULT_BAN_SECONDS,
    DEFAULT_FEED_LINES,
    DEFAULT_HOST,
    DEFAULT_PORT,
    Framing,
    Network,
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


def _above_zero(text: str) -> float | None:
    """The finite number above 0 that ``text`` spells, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _seconds(text: str) -> float:
    value = _above_zero(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _minutes(text: str) -> float:
    value = _above_zero(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a number of minutes above 0, got {text!r}")
    return value


def _rate(text: str) -> float:
    """``N/s`` or ``N``: connections a second."""
    value = _above_zero(text.strip().removesuffix("/s"))
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a rate above 0 such as 10/s (connections a second), got {text!r}")
    return value


def _network(text: str) -> Network:
    try:
        return parse_network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        help="Address or host name to listen on: :: listens on every interface, IPv4 and IPv6; "
        f"0.0.0.0 on every IPv4 interface only (default {DEFAULT_HOST}).",
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
    for flag, what in (
        ("--allow", "Admit only clients from this network or address (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)"),
        ("--deny", "Refuse clients from this network or address; a --deny wins over an --allow"),
    ):
        parser.add_argument(
            flag, type=_network, action="append", default=[], metavar="CIDR", help=f"{what}. Repeatable."
        )
    parser.add_argument(
        "--max-per-ip",
        type=_whole_number(1, None),
        default=None,
        metavar="N",
        help="Refuse a connection beyond N clients at once from one address (default: no limit).",
    )
    parser.add_argument(
        "--accept-rate",
        type=_rate,
        default=None,
        metavar="N/s",
        help="Refuse new connections from one address beyond N a second, in bursts of up to N (default: no limit).",
    )
    parser.add_argument(
        "--ban-minutes",
        type=_minutes,
        default=None,
        metavar="MINUTES",
        help=f"How long the monitor's ban (b) refuses an address (default {DEFAULT_BAN_SECONDS / 60:g}).",
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
    # The reader of stdout is gone; keep the interpreter's final flush quiet.
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and not args.headless:
        parser.error("--json is for the headless log: add --headless")
    if args.ban_minutes is not None and args.headless:
        parser.error("--ban-minutes is for bans from the monitor (b): drop --headless, or use --deny")
    for allowed in args.allow:
        for denied in args.deny:
            if allowed.version == denied.version and allowed.subnet_of(denied):
                parser.error(f"--allow {allowed} lies inside --deny {denied}: nobody in it could connect")
    # Textual reads keys from stdin and draws on stderr.
    if not args.headless and not (sys.stdin.isatty() and sys.stderr.isatty()):
        parser.error("the monitor needs a terminal; use --headless to log to a pipe or file")
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_clients=args.max_clients,
        idle_timeout=args.idle_timeout,
        framing=Framing(args.framing),
        allow=tuple(args.allow),
        deny=tuple(args.deny),
        max_per_ip=args.max_per_ip,
        accept_rate=args.accept_rate,
        ban_seconds=DEFAULT_BAN_SECONDS if args.ban_minutes is None else args.ban_minutes * 60,
    )
    _raise_fd_limit()
    if not args.headless:
        try:
            return _run_monitor(config, args.feed_lines)
        except ListenError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
    # Client bytes are escaped, but printable non-ASCII text is kept: never crash on encoding.
    sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        trio.run(run_headless, config, sys.stdout, args.json)
    except ListenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        sys.stdout.flush()
    except OSError:  # a closed pipe or a vanished terminal
        _silence_stdout()
    return 0
