"""``tui-echo ctl``: steer a running server from a script. Exit 0 done, 1 refused by the server, 2 usage.

The clients come from the server's snapshot at connect; ``--filter`` takes
the monitor's filter syntax (``tui_echo.client_filter``). ``kick --filter``
never prompts: it prints how many it kicked, and with more than one match it
kicks only when given ``--yes`` (else exit 2), so that a script never kicks
a crowd by a typo.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tui_echo.arguments import PROG
from tui_echo.client_filter import FilterError, compile_filter
from tui_echo.control import protocol
from tui_echo.net import format_address
from tui_echo.send_text import SendTextError, parse_send_text
from tui_echo.server.clients import MAX_LABEL_CHARS, ClientState
from tui_echo.server.faults import CLEAR_FAULTS, FaultSpecError, parse_faults
from tui_echo.text import format_duration, format_size, plural, printable
from tui_echo.wire.state import decode_client, decode_rule

CTL_ACTIONS = (
    "clients",
    "rules",
    "kick",
    "kick-all",
    "label",
    "send",
    "broadcast",
    "record",
    "fault",
    "faults",
    "stop",
    "reload",
)
GONE_SHOWN = 20  # ids a kick --filter names of the clients that were gone before it ran


def fail(command: str, message: str, code: int) -> int:
    print(f"{PROG} {command}: error: {message}", file=sys.stderr)
    return code


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


# ---- arguments -------------------------------------------------------------------------------


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


def _label(text: str) -> str:
    if len(text.strip()) > MAX_LABEL_CHARS:
        raise argparse.ArgumentTypeError(f"a label has at most {MAX_LABEL_CHARS} characters")
    return text


def _fault_spec(text: str) -> str:
    """A fault spec as given (checked here too, so that a typo is a usage error), or ``clear``."""
    if text.strip() == CLEAR_FAULTS:
        return CLEAR_FAULTS
    try:
        parse_faults(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _filter(text: str) -> str:
    try:
        compile_filter(text)
    except FilterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


FILTER_HELP = (
    "only the clients EXPR matches: #ID, digits (id, port, address), 10.0.0.7, :PORT, 10.0.0.0/24, "
    "tls, TLSv1.3, plain, a status word (kicked, closing), label text; a|b either, !EXPR not, /REGEX/"
)


def add_actions(ctl: argparse.ArgumentParser, parser_class: type[argparse.ArgumentParser]) -> None:
    # prog: argparse would otherwise name each command after ctl's whole usage line, in every error
    actions = ctl.add_subparsers(
        dest="action", required=True, metavar="COMMAND", parser_class=parser_class, prog=f"{PROG} ctl"
    )
    clients = actions.add_parser("clients", help="the connected clients (a table, or --json)")
    clients.add_argument("--json", action="store_true")
    clients.add_argument("--filter", type=_filter, metavar="EXPR", help=FILTER_HELP)
    rules = actions.add_parser("rules", help="the reply rules with their actions, hits and last matches")
    rules.add_argument("--json", action="store_true")
    kick = actions.add_parser("kick", help="disconnect one client, or those --filter matches")
    kick.add_argument("client", type=_client_id, metavar="ID", nargs="?")
    kick.add_argument("--filter", type=_filter, metavar="EXPR", help=FILTER_HELP)
    kick.add_argument("--yes", action="store_true", help="kick them even when more than one matches")
    actions.add_parser("kick-all", help="disconnect every client")
    label = actions.add_parser("label", help="name a client (an empty TEXT takes its label away)")
    label.add_argument("client", type=_client_id, metavar="ID")
    label.add_argument("text", type=_label, metavar="TEXT")
    send = actions.add_parser("send", help="send TEXT to one client (escapes: \\n \\r \\t \\0 \\xNN \\\\)")
    send.add_argument("client", type=_client_id, metavar="ID")
    send.add_argument("text", type=_send_text, metavar="TEXT")
    broadcast = actions.add_parser("broadcast", help="send TEXT to every client (the same escapes)")
    broadcast.add_argument("text", type=_send_text, metavar="TEXT")
    record = actions.add_parser(
        "record",
        help="record start FILE: every byte of the clients that connect from now on (FILE relative to the "
        "server's directory; the answer gives its absolute path); record stop; record status",
    )
    record.add_argument("what", choices=["start", "stop", "status"])
    record.add_argument("file", nargs="?", metavar="FILE")
    fault = actions.add_parser("fault", help="give one client faults (latency=200ms,drop=0.1 …), or clear them: clear")
    fault.add_argument("client", type=_client_id, metavar="ID")
    fault.add_argument("spec", type=_fault_spec, metavar="SPEC")
    faults = actions.add_parser("faults", help="the clients with faults, and what they are (a table, or --json)")
    faults.add_argument("--json", action="store_true")
    actions.add_parser("stop", help="stop the server: every client is closed")
    actions.add_parser(
        "reload",
        help="re-read --allow-file, --deny-file and --rules files (as SIGUSR1 does); a bad file changes nothing",
    )


# ---- output ------------------------------------------------------------------------------------


def clients_table(clients: list[ClientState], workers: Sequence[int | None] = ()) -> str:
    """``workers``: each client's worker, for a WORKER column first (a --workers server's clients)."""
    now = time.time()
    shown = any(worker is not None for worker in workers)
    # The label last: it may hold spaces, and a script that splits the other columns keeps working.
    proxied = any(state.proxy is not None for state in clients)  # --proxy-protocol: which proxy relayed each
    via_header = ("VIA",) if proxied else ()
    rows = [
        (
            *(("WORKER",) if shown else ()),
            "ID",
            "PEER",
            *via_header,
            "CONNECTED",
            "MSGS",
            "IN",
            "OUT",
            "DROPPED",
            "IDLE",
            "STATUS",
            "LABEL",
        )
    ]
    for index, state in enumerate(clients):
        via = () if not proxied else ("-" if state.proxy is None else format_address(state.proxy),)
        rows.append(
            (
                *((str(workers[index]),) if shown else ()),
                f"#{state.client_id}",
                format_address(state.peer),
                *via,
                format_duration(now - state.connected_at),
                str(state.messages_in),
                format_size(state.bytes_in),
                format_size(state.bytes_out),
                str(state.dropped_out),  # chat, broker: deliveries that never reached it
                format_duration(now - state.last_activity),
                str(state.status),
                printable(state.label),  # inert: whatever a rule or a console set
            )
        )
    return table(rows)


def faults_table(clients: list[ClientState], workers: Sequence[int | None] = ()) -> str:
    """``workers``: each client's worker, for a WORKER column first, as ``clients_table``."""
    now = time.time()
    shown = any(worker is not None for worker in workers)
    rows = [(*(("WORKER",) if shown else ()), "ID", "PEER", "FAULT", "ENDS IN", "DROPPED", "CORRUPTED")]
    for index, state in enumerate(clients):
        ends = "" if state.fault_ends is None else format_duration(max(state.fault_ends - now, 0.0))
        rows.append(
            (
                *((str(workers[index]),) if shown else ()),
                f"#{state.client_id}",
                format_address(state.peer),
                state.fault,
                ends,
                str(state.fault_dropped),
                str(state.fault_corrupted),
            )
        )
    return table(rows) if len(rows) > 1 else "no client has faults"


def _rules_table(records: list[dict[str, Any]]) -> str:
    if not records:
        return "no reply rules (start the server with --rule or --rules)"
    now = time.time()
    header = ("RULE", "HITS", "LAST", "LAST MATCH", "MATCH => REPLY")
    return table([header, *(decode_rule(record).cells(now) for record in records)])


# ---- running ------------------------------------------------------------------------------------


class Steered(Protocol):
    """One server's control socket (``Connection``), or each worker's of a --workers server (``Fleet``)."""

    @property
    def snapshot(self) -> dict[str, Any]: ...
    def command(self, name: str, **fields: object) -> dict[str, Any]: ...
    def close(self) -> None: ...


def _matching(connection: Steered, expression: str | None) -> list[tuple[dict[str, Any], ClientState]]:
    """The snapshot's clients (record and state), those ``expression`` matches when given."""
    pairs = [(record, decode_client(record)) for record in connection.snapshot["clients"]]
    if expression is None:
        return pairs
    matches = compile_filter(expression)
    return [(record, state) for record, state in pairs if matches(state)]


def _kick_filtered(connection: Steered, args: argparse.Namespace) -> int:
    ids = [state.client_id for _, state in _matching(connection, args.filter)]
    if not ids:
        print(f"no client matches {args.filter!r}: none kicked")
        return 0
    if len(ids) > 1 and not args.yes:
        return fail(
            "ctl",
            f"{plural(len(ids), 'client')} match {args.filter!r}: add --yes to kick them all (none kicked)",
            2,
        )
    reply = connection.command("kick_clients", clients=ids)
    if not reply.get("ok"):
        return fail("ctl", str(reply.get("message", reply.get("error"))), 1)
    gone = [int(client_id) for client_id in reply.get("gone", [])]
    line = f"kicked {plural(int(reply.get('acted', 0)), 'client')} matching {args.filter!r}"
    if gone:
        named = ", ".join(f"#{client_id}" for client_id in gone[:GONE_SHOWN])
        line += f"; {len(gone)} gone before the kick ({named}{' …' if len(gone) > GONE_SHOWN else ''})"
    print(line)
    return 0


def _record(connection: Steered, what: str, file: str | None) -> int:
    """``ctl record start FILE`` (the answer: its absolute path), ``record stop``, ``record status``."""
    if what == "start" and not file:
        return fail("ctl", "record start needs a FILE", 2)
    reply = connection.command("record", action=what, **({"path": file} if what == "start" else {}))
    if not reply.get("ok"):
        return fail("ctl", str(reply.get("message", reply.get("error"))), 1)
    if what == "status":
        path = reply.get("recording")
        if path is None:
            print("not recording")
        else:
            print(f"recording to {path}; gaps {reply.get('gaps')}, {reply.get('lost_bytes')} bytes not recorded")
    else:
        print(f"{'recording to' if what == 'start' else 'recorded to'} {reply['path']}")
    return 0


def run_ctl(args: argparse.Namespace, connect: Callable[[], Steered]) -> int:
    if args.action == "kick" and (args.client is None) == (args.filter is None):
        return fail("ctl kick", f"give a client ID or --filter EXPR, one of them (see {PROG} ctl kick --help)", 2)
    connection = connect()
    try:
        if args.action == "clients":
            pairs = _matching(connection, args.filter)
            if args.json:
                print(json.dumps([record for record, _ in pairs]))
            else:
                print(clients_table([state for _, state in pairs], [record.get("worker") for record, _ in pairs]))
            return 0
        if args.action == "faults":
            faulted = [(record, state) for record, state in _matching(connection, None) if state.fault]
            if args.json:
                print(json.dumps([record for record, _ in faulted]))
            else:
                print(faults_table([state for _, state in faulted], [record.get("worker") for record, _ in faulted]))
            return 0
        if args.action == "rules":
            rules = connection.snapshot.get("rules", [])
            print(json.dumps(rules) if args.json else _rules_table(rules))
            return 0
        if args.action == "kick" and args.filter is not None:
            return _kick_filtered(connection, args)
        if args.action == "record":
            return _record(connection, args.what, args.file)
        fields: dict[str, object] = {}
        if args.action in ("kick", "send", "label", "fault"):
            fields["client"] = args.client
        if args.action == "fault":
            fields["faults"] = args.spec
        if args.action in ("send", "broadcast"):
            fields["data_b64"] = protocol.data_b64(args.text)
        if args.action == "label":
            fields["text"] = args.text
        reply = connection.command(args.action.replace("-", "_"), **fields)
    finally:
        connection.close()
    if not reply.get("ok"):
        return fail("ctl", str(reply.get("message", reply.get("error"))), 1)
    if isinstance(reply.get("message"), str):  # what a reload did
        print(printable(reply["message"]))
    return 0
