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
)
from tui_echo.control.fleet import Fleet, resolve_servers, resolve_targets
from tui_echo.control.fleet import servers as fleet_servers
from tui_echo.control.paths import ServerEntry
from tui_echo.consoles.ctl import CTL_ACTIONS, add_actions, fail, run_ctl
from tui_echo.headless.log import EventLog, HumanFormat
from tui_echo.monitor.options import add_feed_lines
from tui_echo.monitor.terminal import terminal_problem
from tui_echo.output import reader_gone
from tui_echo.server.events import ServerNotice
from tui_echo.text import format_duration
from tui_echo.wire.events import decode_event
from tui_echo.wire.state import decode_client

_TICK_SECONDS = 1.0  # the human log's busy-client summaries come this often


def _servers_table(servers: list[tuple[ServerEntry, int | None]]) -> str:
    now = time.time()
    rows = [("PORT", "PID", "UP", "CLIENTS", "SOCKET")]
    for entry, clients in servers:
        rows.append(
            (
                str(entry.port),
                str(entry.pid) if entry.workers == 1 else f"{entry.workers} workers",
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
    """Every known server with its clients now (None: it did not answer); a --workers server once,
    as its first worker's entry, with every worker's clients summed."""
    found: list[tuple[ServerEntry, int | None]] = []
    for group in fleet_servers():
        counts: list[int] = []
        for entry in group:
            try:
                connection = Connection.open(Path(entry.socket), events=False, role="list")
            except ConsoleError:
                break
            connection.close()
            counts.append(int(connection.snapshot["totals"]["clients_now"]))
        found.append((group[0], sum(counts) if len(counts) == len(group) else None))
    return found


def _targets(target: str | None) -> list[Path]:
    """The control sockets of the server TARGET names (one per worker of a --workers server); a
    TARGET that names none, or several servers, is a ConsoleError with the servers' table."""
    try:
        return resolve_targets(target)
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
                        "workers": entry.workers,
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
    connection: Connection | Fleet
    paths = _targets(args.target)
    if len(paths) > 1:  # a --workers server: every worker's events, as one stream
        connection = Fleet.open(paths, events=True)
        connection.tick = _TICK_SECONDS
    else:
        connection = Connection.open(paths[0], events=True)
        connection.sock.settimeout(_TICK_SECONDS)
    sys.stdout.reconfigure(errors="backslashreplace", line_buffering=True)  # type: ignore[union-attr]
    log = EventLog(HumanFormat())

    def adopt(snapshot: dict[str, Any]) -> None:
        for record in snapshot["clients"]:
            state = decode_client(record)
            log.known_client(
                state.client_id, record["peer"], state.last_activity, state.messages_in, state.bytes_in, state.label
            )

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
        return fail("events", f'{exc} (no "stopped" event: was it killed?)', 1)
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


def _ctl(args: argparse.Namespace) -> int:
    # Every control socket of the server (one per worker of a --workers server). A command needs no
    # snapshot: one of 10,000 clients would hold up the server's loop for nothing (only listing clients,
    # faults or rules, and kicking by a filter, read the clients).
    snapshot = args.action in ("clients", "rules", "faults") or getattr(args, "filter", None) is not None
    return run_ctl(args, lambda: Fleet.open(_targets(args.target), events=False, snapshot=snapshot))


# ---- attach --------------------------------------------------------------


def _attach(args: argparse.Namespace) -> int:
    if args.all and args.targets:
        return fail("attach", "--all attaches to every running server: give it no TARGET", 2)
    problem = terminal_problem()  # none under textual-serve (tui-echo web): its driver talks over pipes
    if problem:
        return fail("attach", f"the monitor needs a terminal, {problem}; use tui-echo events to stream to a pipe", 2)
    if args.all or len(args.targets) > 1:  # several servers in one console (one found: shown as usual)
        try:
            found = resolve_servers(None if args.all else args.targets)
        except TargetError as exc:
            raise ConsoleError(str(exc)) from None
        servers, names = [paths for _, paths in found], [name for name, _ in found]
    else:
        servers, names = [_targets(args.targets[0] if args.targets else None)], None
    # Imported here: list, events and ctl never load Textual.
    from tui_echo.monitor.attached import run_attached

    return run_attached(servers, args.feed_lines, names)


# ---- web -----------------------------------------------------------------


def _web(args: argparse.Namespace) -> int:
    # The server is found (and asked) once, here: every tab then attaches to this same socket, and a
    # problem is one line before anything listens.
    paths = _targets(args.target)
    connection = Connection.open(paths[0], events=False, snapshot=False)  # its hello is all web needs
    connection.close()
    server = connection.server
    server_port = server.addresses[0][1]
    workers = f"{len(paths)} workers, " if len(paths) > 1 else ""
    # Imported here: only web loads aiohttp and textual-serve.
    from tui_echo.consoles.web import WebError, serve

    def started(port: int, url: str) -> None:
        print(f"{PROG} web: the console of {workers}pid {server.pid} (port {server_port}), one per browser tab:")
        print(f"    {url}")
        print(f"127.0.0.1 only: from another machine, ssh -L {port}:127.0.0.1:{port} HOST, then open the same URL.")
        print("Ctrl+C stops.", flush=True)

    try:
        serve(
            connection.path,
            title=f"tui-echo · pid {server.pid} · port {server_port}",
            port=args.http_port,
            started=started,
            target=str(server_port) if len(paths) > 1 else None,  # each tab attaches to every worker
        )
    except WebError as exc:
        return fail("web", str(exc), 2)
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
    attach = _parser(
        "attach",
        "Open the monitor on a running server, or on several in one console. q detaches; the servers and"
        " their clients carry on.",
    )
    attach.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="the server: its port, its control socket's path, or nothing for the only one running;"
        " several: one console over them all, with a server column",
    )
    attach.add_argument("--all", action="store_true", help="every running server, in one console")
    add_feed_lines(attach)

    listing = _parser("list", "Show the running servers: port, pid, uptime, clients now and control socket.")
    listing.add_argument("--json", action="store_true", help="one JSON object per server")

    events = _parser("events", "Stream a running server's events to stdout, like docker events, until it stops.")
    _target(events)
    events.add_argument("--json", action="store_true", help="JSON Lines, as the --json log (with data_b64)")

    ctl = _parser("ctl", "Steer a running server from a script. Exit 0 done, 1 refused by the server, 2 usage.")
    ctl.usage = f"{PROG} ctl [TARGET] COMMAND ...  (TARGET: a port, a control socket, or nothing for the only server)"
    add_actions(ctl, OneLineParser)
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
    if name == "ctl" and rest and rest[0] not in CTL_ACTIONS and not rest[0].startswith("-"):
        target, *rest = rest  # an optional positional before the subcommands: argparse cannot tell
    args = parser.parse_args(rest)
    if name == "ctl":
        args.target = target
    try:
        return _RUN[name](args)
    except ConsoleError as exc:
        return fail(name, str(exc), 2 if not isinstance(exc, ServerGone) else 1)
