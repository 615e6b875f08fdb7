"""``tui-echo attach | list | events | ctl | web``: consoles of a running server.

Exit codes: 0 done; 1 the server refused the command (an unknown client id,
say) or went away mid-stream; 2 a usage error, or no server to talk to.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tui_echo.arguments import PROG, OneLineParser, whole_number
from tui_echo.control.client import (
    Connection,
    ConsoleError,
    ServerGone,
    TargetError,
    known_servers,
    resolve_target,
)
from tui_echo.control import protocol
from tui_echo.control.paths import ServerEntry
from tui_echo.headless.log import EventLog, HumanFormat
from tui_echo.monitor.options import add_feed_lines
from tui_echo.monitor.terminal import terminal_problem
from tui_echo.net import format_address
from tui_echo.output import reader_gone
from tui_echo.send_text import SendTextError, parse_send_text
from tui_echo.server.events import ServerNotice
from tui_echo.server.faults import FaultSpecError, parse_faults
from tui_echo.text import format_duration, format_size
from tui_echo.wire.events import decode_event
from tui_echo.wire.state import decode_client, decode_rule

_CTL_ACTIONS = ("clients", "rules", "kick", "kick-all", "send", "broadcast", "fault", "faults", "stop")
_TICK_SECONDS = 1.0  # the human log's busy-client summaries come this often


def _fail(command: str, message: str, code: int) -> int:
    print(f"{PROG} {command}: error: {message}", file=sys.stderr)
    return code


def _servers_table(servers: list[tuple[ServerEntry, int | None]]) -> str:
    now = time.time()
    rows = [("PORT", "PID", "UP", "CLIENTS", "SOCKET")]
    for entry, clients in servers:
        rows.append(
            (
                str(entry.port),
                str(entry.pid),
                format_duration(now - entry.started_at),
                "?" if clients is None else str(clients),
                entry.socket,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4] for row in rows
    )


def _survey() -> list[tuple[ServerEntry, int | None]]:
    """Every known server with its clients now (None: it did not answer)."""
    found: list[tuple[ServerEntry, int | None]] = []
    for entry in known_servers():
        try:
            connection = Connection.open(Path(entry.socket), events=False, role="list")
        except ConsoleError:
            found.append((entry, None))
            continue
        connection.close()
        found.append((entry, int(connection.snapshot["totals"]["clients_now"])))
    return found


def _connect(command: str, target: str | None, *, events: bool) -> Connection:
    try:
        return Connection.open(resolve_target(target), events=events)
    except TargetError as exc:
        if exc.servers:
            raise ConsoleError(f"{exc}\n{_servers_table([(entry, None) for entry in exc.servers])}") from None
        raise


# ---- list ---------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    servers = _survey()
    if args.json:
        for entry, clients in servers:
            print(
                json.dumps(
                    {
                        "port": entry.port,
                        "pid": entry.pid,
                        "started": entry.started_at,
                        "clients_now": clients,
                        "socket": entry.socket,
                    }
                )
            )
    elif servers:
        print(_servers_table(servers))
    else:
        print("no running tui-echo servers", file=sys.stderr)
    return 0


# ---- events ---------------------------------------------------------------


def _events(args: argparse.Namespace) -> int:
    connection = _connect("events", args.target, events=True)
    sys.stdout.reconfigure(errors="backslashreplace", line_buffering=True)  # type: ignore[union-attr]
    log = EventLog(HumanFormat())
    connection.sock.settimeout(_TICK_SECONDS)

    def adopt(snapshot: dict[str, Any]) -> None:
        for record in snapshot["clients"]:
            state = decode_client(record)
            log.known_client(state.client_id, record["peer"], state.last_activity, state.messages_in, state.bytes_in)

    try:
        adopt(connection.snapshot)
        while True:
            try:
                message = connection.read()
            except TimeoutError:
                lines = log.tick(time.time())
            else:
                lines = _event_lines(message, log, args.json, adopt)
                if message["type"] == "event" and message.get("event") == "stopped":
                    _print(lines)
                    return 0
            if not lines and reader_gone():  # `events | head -2` on a quiet server: no write would find out
                return 0
            _print(lines)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConsoleError(f"the server sent something this console cannot read: {exc}") from None
    except ServerGone as exc:
        return _fail("events", f'{exc} (no "stopped" event: was it killed?)', 1)
    except KeyboardInterrupt:
        return 0
    finally:
        connection.close()


def _print(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")


def _event_lines(
    message: dict[str, Any], log: EventLog, as_json: bool, adopt: Callable[[dict[str, Any]], None]
) -> list[str]:
    kind = message["type"]
    if kind == "snapshot":  # this console fell behind: the server sent a fresh state instead of a backlog
        adopt(message)
        note = f"{message.get('lost', 0)} events missed (this console fell behind); state resent"
        if as_json:
            return [json.dumps({"event": "notice", "message": note})]
        return log.handle(ServerNotice(message=note, at=time.time()))
    if kind != "event":
        return []
    if as_json:
        record = {key: value for key, value in message.items() if key != "type"}
        return [json.dumps(record, ensure_ascii=True, separators=(",", ":"))]
    event = decode_event(message)
    return [] if event is None else log.handle(event)


# ---- ctl -------------------------------------------------------------------


def _client_id(text: str) -> int:
    digits = text.removeprefix("#")
    if not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"expected a client id such as 3 or #3, got {text!r}")
    return int(digits)


def _send_text(text: str) -> bytes:
    try:
        data = parse_send_text(text)
    except SendTextError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not data:
        raise argparse.ArgumentTypeError("nothing to send")
    return data


def _fault_spec(text: str) -> str:
    """A fault spec as given (checked here too, so that a typo is a usage error), or ``clear``."""
    if text.strip() == protocol.CLEAR_FAULTS:
        return protocol.CLEAR_FAULTS
    try:
        parse_faults(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _faults_table(clients: list[dict[str, Any]]) -> str:
    now = time.time()
    rows = [("ID", "PEER", "FAULT", "ENDS IN", "DROPPED", "CORRUPTED")]
    for state in map(decode_client, clients):
        if state.fault:
            ends = "" if state.fault_ends is None else format_duration(max(state.fault_ends - now, 0.0))
            peer = format_address(state.peer)
            rows.append(
                (f"#{state.client_id}", peer, state.fault, ends, str(state.fault_dropped), str(state.fault_corrupted))
            )
    return _table(rows) if len(rows) > 1 else "no client has faults"


def _clients_table(clients: list[dict[str, Any]]) -> str:
    now = time.time()
    rows = [("ID", "PEER", "CONNECTED", "MSGS", "IN", "OUT", "DROPPED", "IDLE", "STATUS")]
    for state in map(decode_client, clients):
        rows.append(
            (
                f"#{state.client_id}",
                format_address(state.peer),
                format_duration(now - state.connected_at),
                str(state.messages_in),
                format_size(state.bytes_in),
                format_size(state.bytes_out),
                str(state.dropped_out),  # chat, broker: deliveries that never reached it
                format_duration(now - state.last_activity),
                str(state.status),
            )
        )
    return _table(rows)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _rules_table(records: list[dict[str, Any]]) -> str:
    if not records:
        return "no reply rules (start the server with --rule or --rules)"
    now = time.time()
    header = ("RULE", "HITS", "LAST", "LAST MATCH", "MATCH => REPLY")
    return _table([header, *(decode_rule(record).cells(now) for record in records)])


def _ctl(args: argparse.Namespace) -> int:
    connection = _connect("ctl", args.target, events=False)
    try:
        if args.action == "clients":
            clients = connection.snapshot["clients"]
            print(json.dumps(clients) if args.json else _clients_table(clients))
            return 0
        if args.action == "faults":
            faulted = [client for client in connection.snapshot["clients"] if client.get("fault")]
            print(json.dumps(faulted) if args.json else _faults_table(faulted))
            return 0
        if args.action == "rules":
            rules = connection.snapshot.get("rules", [])
            print(json.dumps(rules) if args.json else _rules_table(rules))
            return 0
        fields: dict[str, object] = {}
        if args.action in ("kick", "send", "fault"):
            fields["client"] = args.client
        if args.action == "fault":
            fields["faults"] = args.spec
        if args.action in ("send", "broadcast"):
            fields["data_b64"] = protocol.data_b64(args.text)
        reply = connection.command(args.action.replace("-", "_"), **fields)
    finally:
        connection.close()
    if not reply.get("ok"):
        return _fail("ctl", str(reply.get("message", reply.get("error"))), 1)
    return 0


# ---- attach --------------------------------------------------------------


def _attach(args: argparse.Namespace) -> int:
    problem = terminal_problem()  # none under textual-serve (tui-echo web): its driver talks over pipes
    if problem:
        return _fail("attach", f"the monitor needs a terminal, {problem}; use tui-echo events to stream to a pipe", 2)
    target = resolve_target(args.target)
    # Imported here: list, events and ctl never load Textual.
    from tui_echo.monitor.attached import run_attached

    return run_attached(target, args.feed_lines)


# ---- web -----------------------------------------------------------------


def _web(args: argparse.Namespace) -> int:
    # The server is found (and asked) once, here: every tab then attaches to this same socket, and a
    # problem is one line before anything listens.
    connection = _connect("web", args.target, events=False)
    connection.close()
    server = connection.server
    server_port = server.addresses[0][1]
    # Imported here: only web loads aiohttp and textual-serve.
    from tui_echo.consoles.web import WebError, serve

    def started(port: int, url: str) -> None:
        print(f"{PROG} web: the console of pid {server.pid} (port {server_port}), one per browser tab:")
        print(f"    {url}")
        print(f"127.0.0.1 only: from another machine, ssh -L {port}:127.0.0.1:{port} HOST, then open the same URL.")
        print("Ctrl+C stops.", flush=True)

    try:
        serve(
            connection.path,
            title=f"tui-echo · pid {server.pid} · port {server_port}",
            port=args.http_port,
            started=started,
        )
    except WebError as exc:
        return _fail("web", str(exc), 2)
    return 0


# ---- the parsers -----------------------------------------------------------


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"{PROG} {name}", description=description)
    return parser


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="the server: its port, its control socket's path, or nothing for the only one running",
    )


def build_parsers() -> dict[str, argparse.ArgumentParser]:
    attach = _parser("attach", "Open the monitor on a running server. q detaches; the server and its clients carry on.")
    _target(attach)
    add_feed_lines(attach)

    listing = _parser("list", "Show the running servers: port, pid, uptime, clients now and control socket.")
    listing.add_argument("--json", action="store_true", help="one JSON object per server")

    events = _parser("events", "Stream a running server's events to stdout, like docker events, until it stops.")
    _target(events)
    events.add_argument("--json", action="store_true", help="JSON Lines, as the --json log (with data_b64)")

    ctl = _parser("ctl", "Steer a running server from a script. Exit 0 done, 1 refused by the server, 2 usage.")
    ctl.usage = f"{PROG} ctl [TARGET] COMMAND ...  (TARGET: a port, a control socket, or nothing for the only server)"
    # prog: argparse would otherwise name each command after ctl's whole usage line, in every error
    actions = ctl.add_subparsers(
        dest="action", required=True, metavar="COMMAND", parser_class=OneLineParser, prog=f"{PROG} ctl"
    )
    clients = actions.add_parser("clients", help="the connected clients (a table, or --json)")
    clients.add_argument("--json", action="store_true")
    rules = actions.add_parser("rules", help="the reply rules with their hits and last matches (a table, or --json)")
    rules.add_argument("--json", action="store_true")
    actions.add_parser("kick", help="disconnect one client").add_argument("client", type=_client_id, metavar="ID")
    actions.add_parser("kick-all", help="disconnect every client")
    send = actions.add_parser("send", help="send TEXT to one client (escapes: \\n \\r \\t \\0 \\xNN \\\\)")
    send.add_argument("client", type=_client_id, metavar="ID")
    send.add_argument("text", type=_send_text, metavar="TEXT")
    broadcast = actions.add_parser("broadcast", help="send TEXT to every client (the same escapes)")
    broadcast.add_argument("text", type=_send_text, metavar="TEXT")
    fault = actions.add_parser("fault", help="give one client faults (latency=200ms,drop=0.1 …), or clear them: clear")
    fault.add_argument("client", type=_client_id, metavar="ID")
    fault.add_argument("spec", type=_fault_spec, metavar="SPEC")
    faults = actions.add_parser("faults", help="the clients with faults, and what they are (a table, or --json)")
    faults.add_argument("--json", action="store_true")
    actions.add_parser("stop", help="stop the server: every client is closed")
    web = _parser(
        "web",
        "Serve the attached console to a browser, one console per tab, on 127.0.0.1 only, behind a token"
        " printed at start.",
    )
    _target(web)
    web.add_argument(
        "--http-port",
        type=whole_number(0, 65535),
        default=8000,
        metavar="PORT",
        help="the port on 127.0.0.1 to serve on (default 8000; 0: any free port)",
    )
    return {"attach": attach, "list": listing, "events": events, "ctl": ctl, "web": web}


_RUN: dict[str, Callable[[argparse.Namespace], int]] = {
    "attach": _attach,
    "list": _list,
    "events": _events,
    "ctl": _ctl,
    "web": _web,
}


def run_subcommand(argv: Sequence[str]) -> int:
    name, *rest = argv
    parser = build_parsers()[name]
    target = None
    if name == "ctl" and rest and rest[0] not in _CTL_ACTIONS and not rest[0].startswith("-"):
        target, *rest = rest  # an optional positional before the subcommands: argparse cannot tell
    args = parser.parse_args(rest)
    if name == "ctl":
        args.target = target
    try:
        return _RUN[name](args)
    except ConsoleError as exc:
        return _fail(name, str(exc), 2 if not isinstance(exc, ServerGone) else 1)
