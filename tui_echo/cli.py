"""The ``tui-echo`` command line."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import resource
import socket
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING, NoReturn

from tui_echo.arguments import PROG, OneLineParser, minutes, per_second, seconds, seconds_or_off, whole_number
from tui_echo.consoles import SUBCOMMANDS, SUBCOMMANDS_HELP
from tui_echo.monitor.options import add_feed_lines
from tui_echo.monitor.terminal import terminal_problem
from tui_echo.output import finish, silence_stdout
from tui_echo.ops.options import add_service_flags, service_settings, systemd_sockets
from tui_echo.ops.workers import add_worker_flags, workers_problem
from tui_echo.recording.options import add_record_flags, record_settings
from tui_echo.server.access import parse_network
from tui_echo.server.binding import ListenError
from tui_echo.server.config import (
    DEFAULT_BAN_SECONDS,
    DEFAULT_HOST,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_FRAME,
    DEFAULT_PORT,
    DEFAULT_WRITE_TIMEOUT,
    SAMPLED_DATA_EVENTS_PER_SECOND,
    Framing,
    Mode,
    Network,
    RELAY_QUEUE_BYTES,
    ServerConfig,
)
from tui_echo.server.fault_options import add_fault_flags, fault_settings
from tui_echo.server.reload import ReloadError, read_networks
from tui_echo.server.rules import RULE_PREFIX_BYTES, Rule, RuleError, load_rules_file, parse_rule_option
from tui_echo.server.tls import HANDSHAKE_TIMEOUT_SECONDS, TlsError, TlsSettings, load_tls, self_signed_tls
from tui_echo.text import plural

if TYPE_CHECKING:
    from tui_echo.control.listener import ControlSettings
    from tui_echo.recording.writer import RecordSettings

COMMANDS = (*SUBCOMMANDS, "demo", "load", "export", "replay")  # picked by hand in main, before the server's own flags
_FD_LIMIT_WANTED = 65_536


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
    parser = OneLineParser(
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
        help="Address or host name to listen on: :: listens on every interface, IPv4 and IPv6; "
        f"0.0.0.0 on every IPv4 interface only (default {DEFAULT_HOST}).",
    )
    parser.add_argument(
        "--port",
        type=whole_number(0, 65535),
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
    add_feed_lines(parser)
    parser.add_argument(
        "--max-clients",
        type=whole_number(1, None),
        default=DEFAULT_MAX_CLIENTS,
        metavar="N",
        help=f"Refuse connections beyond N clients at once, closing them at once (default {DEFAULT_MAX_CLIENTS}).",
    )
    parser.add_argument(
        "--idle-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="Disconnect a client that has sent nothing for this many seconds (default: never).",
    )
    parser.add_argument(
        "--write-timeout",
        type=seconds_or_off,
        default=DEFAULT_WRITE_TIMEOUT,
        metavar="SECONDS",
        help="Disconnect a client that takes none of its echo (chat, broker: of what is sent to it) for this many "
        "seconds, as a slow reader; "
        f"0 waits for ever (default {DEFAULT_WRITE_TIMEOUT:g}).",
    )
    parser.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.ECHO.value,
        help="What the server does with what a client sends: echo it back; chat: each line to every other client "
        "as <#3> the line, with joins and leaves; broker: the raw bytes to every other client; discard: "
        "read and count, send nothing (default echo).",
    )
    parser.add_argument(
        "--framing",
        choices=[f.value for f in Framing],
        default=Framing.CHUNK.value,
        help="What counts as one message: each received chunk, as the classic server counts; each "
        "newline-terminated line; stx-etx: STX (0x02) to the first ETX (0x03), bytes before an STX are noise; "
        "len:u8|u16be|u16le|u32be|u32le: a length prefix, then that many bytes. A message is a frame for the "
        "counts, rules, feed and broker; the echo is the same in every framing (default chunk).",
    )
    parser.add_argument(
        "--max-frame",
        type=whole_number(1, 1 << 30),
        default=DEFAULT_MAX_FRAME,
        metavar="BYTES",
        help=f"The most one message (a line, a frame) may hold: longer is cut into messages this long, "
        f"and counted (default {DEFAULT_MAX_FRAME}).",
    )
    for flag, what in (
        ("--allow", "Admit only clients from this network or address (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)"),
        ("--deny", "Refuse clients from this network or address; a --deny wins over an --allow"),
    ):
        parser.add_argument(
            flag, type=_network, action="append", default=[], metavar="CIDR", help=f"{what}. Repeatable."
        )
    for flag, what in (("--allow-file", "--allow"), ("--deny-file", "--deny")):
        parser.add_argument(
            flag,
            action="append",
            default=[],
            metavar="FILE",
            help=f"As {what}, for each network in FILE (one address or CIDR a line, # comments); "
            "re-read by tui-echo ctl PORT reload and SIGUSR1. Repeatable.",
        )
    parser.add_argument(
        "--keep-denied",
        action="store_true",
        help="A reload that denies the address of a connected client leaves it connected "
        "(default: it is closed, with reason denied).",
    )
    parser.add_argument(
        "--max-per-ip",
        type=whole_number(1, None),
        default=None,
        metavar="N",
        help="Refuse a connection beyond N clients at once from one address (default: no limit).",
    )
    parser.add_argument(
        "--accept-rate",
        type=per_second("connections"),
        default=None,
        metavar="N/s",
        help="Refuse new connections from one address beyond N a second, in bursts of up to N (default: no limit).",
    )
    parser.add_argument(
        "--ban-minutes",
        type=minutes,
        default=None,
        metavar="MINUTES",
        help=f"How long the monitor's ban (b) refuses an address (default {DEFAULT_BAN_SECONDS / 60:g}).",
    )
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="'REGEX => REPLY'",
        help="Answer a message that REGEX (a byte regex; the first match wins) matches with REPLY instead of "
        "its echo. REPLY may use {0} {1} {name} (captures), {client} {peer} {count} {time} {len}, {{ }} and "
        f"the escapes \\n \\r \\t \\0 \\xNN \\\\. Rules look at a message's first {RULE_PREFIX_BYTES} bytes. "
        "Repeatable: tried in order.",
    )
    parser.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="FILE",
        help="Reply rules from a TOML file of [[rule]] tables (match = '…', reply = '…', once = false); "
        "tried before any --rule; re-read by tui-echo ctl PORT reload and SIGUSR1. Repeatable.",
    )
    add_fault_flags(parser)
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="Serve TLS echo with this certificate (PEM; the server's certificate first, then any chain). "
        "Needs --tls-key.",
    )
    parser.add_argument("--tls-key", metavar="FILE", help="The private key (PEM, unencrypted) of --tls-cert.")
    parser.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="Serve TLS echo with a throw-away self-signed certificate made at start for localhost, "
        "127.0.0.1, ::1 and --host; its SHA-256 fingerprint is shown at start.",
    )
    parser.add_argument(
        "--tls-handshake-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"Close a TLS connection that has not finished its handshake by then "
        f"(default {HANDSHAKE_TIMEOUT_SECONDS:g}).",
    )
    add_worker_flags(parser)
    add_service_flags(parser)
    add_record_flags(parser)
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


def _tls_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TlsSettings | None:
    """The TLS settings the flags ask for; a mistake ends the program with one line and exit code 2."""
    if args.tls_self_signed and (args.tls_cert or args.tls_key):
        parser.error("--tls-self-signed makes its own certificate: give either it or --tls-cert and --tls-key")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together: the certificate and its private key")
    timeout = args.tls_handshake_timeout
    if timeout is not None and not (args.tls_self_signed or args.tls_cert):
        parser.error("--tls-handshake-timeout is for a TLS server: add --tls-cert and --tls-key, or --tls-self-signed")
    timeout = HANDSHAKE_TIMEOUT_SECONDS if timeout is None else timeout
    if args.tls_self_signed:
        return self_signed_tls(args.host, timeout)
    if args.tls_cert:
        try:
            return load_tls(args.tls_cert, args.tls_key, timeout)
        except TlsError as exc:
            parser.exit(2, f"{PROG}: error: {exc}\n")
    return None


def _rules(args: argparse.Namespace) -> tuple[Rule, ...]:
    """The reply rules, in the order they are tried: the files' first, then each --rule."""
    rules: list[Rule] = []
    for path in args.rules:
        rules += load_rules_file(path, len(rules) + 1)
    for nth, text in enumerate(args.rule, 1):
        rules.append(parse_rule_option(text, len(rules) + 1, nth))
    return tuple(rules)


def _run_headless(
    config: ServerConfig,
    json_lines: bool,
    control: ControlSettings | None,
    listeners: list[socket.socket],
    record: RecordSettings | None,
    *,
    workers: int = 1,
    arguments: Sequence[str] = (),
) -> int:
    import trio  # imported here, as the server's other parts: the consoles, load and --help start without them

    from tui_echo.headless.runner import run_headless
    from tui_echo.headless.writer import say

    # The log is written to stdout's file descriptor by a thread of its own (headless/writer.py), never through
    # sys.stdout: its buffer stays empty, so the interpreter's flush at exit cannot block on a full pipe.
    try:
        if workers > 1:
            from tui_echo.headless.workers import run_workers

            outcome = trio.run(
                run_workers, config, workers, arguments, sys.stdout.fileno(), json_lines, sys.stdout.encoding, control
            )
        else:
            outcome = trio.run(
                run_headless,
                config,
                sys.stdout.fileno(),
                json_lines,
                sys.stdout.encoding,
                control,
                listeners or None,
                record,
            )
    except ListenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if outcome.abandoned:
        # The writer may still be blocked in a write that will never return. The process does not wait
        # for it (a daemon thread), and nothing else may block on stdout either.
        silence_stdout()
    if outcome.lines_lost and not outcome.reader_gone and config.worker is None:  # a worker's parent reports
        say(f"{PROG}: {plural(outcome.lines_lost, 'log line')} lost (the log could not take them)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Every command, its output flushed where a reader that went away (``| head``) ends it quietly."""
    return finish(lambda: _main(sys.argv[1:] if argv is None else list(argv)))


def _unknown(parser: argparse.ArgumentParser, extras: list[str]) -> NoReturn:
    """One line for what the server's flags do not take: a misspelt command gets the commands, and a guess."""
    word = next((extra for extra in extras if not extra.startswith("-")), None)
    if word is None:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    guess = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f"did you mean {guess[0]}? " if guess else ""
    parser.error(f"unknown command {word!r}: {hint}the commands are {', '.join(COMMANDS)}")


def _main(arguments: list[str]) -> int:
    if arguments and arguments[0] == "demo":
        from tui_echo.demo.run import main as demo_main

        return demo_main(arguments[1:])
    if arguments and arguments[0] == "load" and any(a == "--replay" or a.startswith("--replay=") for a in arguments):
        from tui_echo.recording.play import replay_load_main  # a recording's client: this server's own format

        return replay_load_main(arguments[1:])
    if arguments and arguments[0] == "load":
        from tui_echo.load.cli import main as load_main  # imported here: the server never loads it

        return load_main(arguments[1:])
    if arguments and arguments[0] == "replay":
        from tui_echo.consoles.replay import replay_main

        return replay_main(arguments[1:])
    if arguments and arguments[0] == "export":
        from tui_echo.recording.commands import export_main

        return export_main(arguments[1:])
    if arguments and arguments[0] in SUBCOMMANDS:  # before the server's parser: its flags stay as they were
        from tui_echo.consoles.main import run_subcommand

        return run_subcommand(arguments)
    parser = build_parser()
    args, extras = parser.parse_known_args(arguments)
    if extras:
        _unknown(parser, extras)
    if args.mode == Mode.CHAT and Framing(args.framing).binary:
        parser.error(f"--mode chat is line-based: --framing {args.framing} is for echo, broker and discard")
    if Mode(args.mode).relays and args.max_frame > RELAY_QUEUE_BYTES:
        parser.error(f"--max-frame: at most {RELAY_QUEUE_BYTES} with --mode {args.mode} (a receiver's queue)")
    if args.json and not args.headless:
        parser.error("--json is for the headless log: add --headless")
    if args.ban_minutes is not None and args.headless:
        parser.error("--ban-minutes is for bans from the monitor (b): drop --headless, or use --deny")
    for allowed in args.allow:
        for denied in args.deny:
            if allowed.version == denied.version and allowed.subnet_of(denied):
                parser.error(f"--allow {allowed} lies inside --deny {denied}: nobody in it could connect")
    if args.workers > 1 and args.worker is None and workers_problem(args):
        parser.error(workers_problem(args))
    if not args.headless:
        problem = terminal_problem()
        if problem:
            parser.error(f"the monitor needs a terminal, {problem}; use --headless to log to a pipe or file")
    try:
        rules = _rules(args)
    except RuleError as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
    try:  # read now for their mistakes; the server reads them again as it starts, and at each reload
        for path in args.allow_file + args.deny_file:
            read_networks(path)
    except ReloadError as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_clients=args.max_clients,
        idle_timeout=args.idle_timeout,
        write_timeout=args.write_timeout,
        framing=Framing(args.framing),
        max_frame=args.max_frame,
        mode=Mode(args.mode),
        tls=_tls_settings(parser, args),
        allow=tuple(args.allow),
        deny=tuple(args.deny),
        allow_files=tuple(args.allow_file),
        deny_files=tuple(args.deny_file),
        rules_files=tuple(args.rules),
        keep_denied=args.keep_denied,
        max_per_ip=args.max_per_ip,
        accept_rate=args.accept_rate,
        ban_seconds=DEFAULT_BAN_SECONDS if args.ban_minutes is None else args.ban_minutes * 60,
        rules=rules,
        data_event_rate=SAMPLED_DATA_EVENTS_PER_SECOND,
        **service_settings(parser, args),  # type: ignore[arg-type]
        **fault_settings(args),  # type: ignore[arg-type]
    )
    if args.worker is not None:  # --max-clients stays the whole server's: the workers share their counts
        config = dataclasses.replace(config, worker=args.worker)
    from tui_echo.control.listener import ControlSettings

    control = None if args.no_control else ControlSettings(args.control)
    listeners = systemd_sockets(parser)
    record = record_settings(args)
    _raise_fd_limit()
    if not args.headless and args.workers > 1 and args.worker is None:
        from tui_echo.monitor.workers import run_workers_monitor

        return run_workers_monitor(arguments, args.workers, args.control, args.feed_lines)
    if not args.headless:
        # Imported here: headless runs never load Textual.
        from tui_echo.monitor.guest import GuestServer
        from tui_echo.monitor.launch import run_monitor

        return run_monitor(GuestServer(config, control, listeners or None, record), args.feed_lines)
    if args.workers > 1 and args.worker is None:
        return _run_headless(config, args.json, control, listeners, None, workers=args.workers, arguments=arguments)
    return _run_headless(config, args.json, control, listeners, record)
