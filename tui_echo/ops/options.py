"""The command line's flags for running among other services: the PROXY protocol, metrics, systemd's sockets."""

from __future__ import annotations

import argparse
import socket

from tui_echo.arguments import PROG, seconds
from tui_echo.net import parse_address
from tui_echo.ops.systemd import PassedSocketError, passed_sockets
from tui_echo.server.access import parse_network
from tui_echo.server.config import DEFAULT_PROXY_HEADER_TIMEOUT, Network


def _network(text: str) -> Network:
    try:
        return parse_network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _metrics_address(text: str) -> tuple[str, int]:
    wrong = argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:9464, got {text!r}")
    try:
        host, port = parse_address(text)
    except ValueError:
        raise wrong from None
    if not host or port > 65535:
        raise wrong
    return host, port


def add_service_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="Every connection starts with a PROXY protocol header (v1 or v2: HAProxy send-proxy, nginx "
        "proxy_protocol) naming the real client, which then replaces the proxy's address everywhere.",
    )
    parser.add_argument(
        "--proxy-from",
        type=_network,
        action="append",
        default=[],
        metavar="CIDR",
        help="With --proxy-protocol: only these proxies may connect (and name a client); anyone else is refused "
        "as an untrusted proxy. Repeatable. Without it, any client can claim any address.",
    )
    parser.add_argument(
        "--proxy-header-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"With --proxy-protocol: refuse a connection whose header has not come by then "
        f"(default {DEFAULT_PROXY_HEADER_TIMEOUT:g}).",
    )
    parser.add_argument(
        "--metrics",
        type=_metrics_address,
        default=None,
        metavar="HOST:PORT",
        help="Serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; port 0 picks one, "
        "shown in the log): the counts the consoles show, named tui_echo_*.",
    )


def service_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, object]:
    """The ServerConfig fields of these flags; a mistake is one line and exit 2."""
    if (args.proxy_from or args.proxy_header_timeout is not None) and not args.proxy_protocol:
        parser.error("--proxy-from and --proxy-header-timeout are for --proxy-protocol: add it")
    timeout = args.proxy_header_timeout
    return {
        "proxy_protocol": args.proxy_protocol,
        "proxy_from": tuple(args.proxy_from),
        "proxy_header_timeout": DEFAULT_PROXY_HEADER_TIMEOUT if timeout is None else timeout,
        "metrics": args.metrics,
    }


def systemd_sockets(parser: argparse.ArgumentParser) -> list[socket.socket]:
    """The listening sockets systemd passed (socket activation), if any; a wrong one is one line and exit 2."""
    try:
        return [passed.sock for passed in passed_sockets()]
    except PassedSocketError as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
