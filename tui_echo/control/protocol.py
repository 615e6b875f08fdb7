"""The control protocol: newline-delimited JSON between a server and its consoles. No trio, no Textual.

Both ends use this module: the messages (hello, snapshot, event, counts,
command, reply, error), the version check and the command table. The
records inside the messages (events, clients, totals, bans, rules, the
server) come from the one wire codec, ``tui_echo.wire``, which the ``--json``
log uses too; consoles decode them into the same event and state types the
in-process monitor reads. The README's "Control protocol" section is the
reference for other clients.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import MAX_LABEL_CHARS, ClientState
from tui_echo.server.commands import (
    Ban,
    BanAddress,
    Broadcast,
    ClientAction,
    Done,
    ForClients,
    Kick,
    KickAll,
    Label,
    Reload,
    SendTo,
    ServerCommand,
    SetFaults,
    Shutdown,
    Unban,
)
from tui_echo.server.faults import CLEAR_FAULTS, Faults, FaultSpecError, format_faults, parse_faults
from tui_echo.server.events import ServerEvent, ServerTotals
from tui_echo.server.rules import RuleHits
from tui_echo.text import format_size
from tui_echo.wire.events import encode_event
from tui_echo.wire.records import Record, to_json
from tui_echo.wire.settings import ServerInfo, encode_server
from tui_echo.wire.state import encode_ban, encode_client, encode_rule, encode_totals

PROTOCOL = "tui-echo-control"
VERSION = 8  # goes up with every change to what either end sends (README: "The control protocol")
MAX_LINE_BYTES = 256 * 1024  # one line, either way; a send of MAX_SEND_BYTES in base64 fits
MAX_SEND_BYTES = 64 * 1024  # bytes one send or broadcast command may carry
MAX_CLIENT_IDS = 25_000  # ids one command on many clients may name (in a line of MAX_LINE_BYTES)
MAX_ERRORS = 5  # protocol errors on one connection before the server closes it
COUNTS_SECONDS = 0.25  # how often a console gets fresh counts (of the clients that changed)
# Client records per message: a record is at most about 400 bytes (an IPv6 peer, TLS names), so a
# page stays far below MAX_LINE_BYTES however many clients there are (snapshots and counts).
PAGE_CLIENTS = 200


class ProtocolError(Exception):
    """A message the other end got wrong. ``code`` is for programs, the message for people."""

    def __init__(self, code: str, message: str, request_id: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def encode_line(record: Record) -> bytes:
    return (to_json(record) + "\n").encode("ascii")


def decode_line(line: bytes) -> dict[str, Any]:
    """One line (without its newline) as a JSON object with a string ``type``."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "the line is not valid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_message", "each line must be a JSON object")
    if not isinstance(message.get("type"), str):
        raise ProtocolError("bad_message", 'a message needs a string "type"', message.get("id"))
    return message


def hello(role: str, **fields: object) -> Record:
    return {"type": "hello", "protocol": PROTOCOL, "version": VERSION, role: True, **fields}


class VersionMismatch(ProtocolError):
    """The other end speaks another version of the protocol: nothing more it sends can be read."""

    def __init__(self, theirs: object) -> None:
        super().__init__("bad_version", f"this end speaks version {VERSION}, not {theirs!r}")
        self.theirs = theirs


def check_hello(message: Mapping[str, Any]) -> None:
    """A hello of this protocol and version (raises ProtocolError; VersionMismatch for another version).

    The version is checked before anything else in the hello is read: ends of different versions
    never misread each other, they refuse each other.
    """
    if message.get("type") != "hello":
        raise ProtocolError("hello_first", f'the first message must be a hello, got "{message.get("type")}"')
    if message.get("protocol") != PROTOCOL:
        raise ProtocolError("bad_protocol", f'the hello must say "protocol": "{PROTOCOL}"')
    if message.get("version") != VERSION:
        raise VersionMismatch(message.get("version"))


# ---- state: snapshots and counts -----------------------------------------


def snapshot(
    server: ServerInfo,
    clients: Iterable[ClientState],
    totals: ServerTotals,
    bans: Iterable[ActiveBan] = (),
    rules: Iterable[RuleHits] = (),
    *,
    lost: int = 0,
    data_dropped: int = 0,
) -> list[Record]:
    """Everything a console needs to draw the server; ``lost``: events this snapshot replaces.

    A header (``snapshot``, with ``client_count``) and then the clients in ``snapshot_clients``
    pages of at most PAGE_CLIENTS each: no line depends on how many clients there are.
    """
    records = [encode_client(state) for state in clients]
    header: Record = {
        "type": "snapshot",
        "server": encode_server(server),
        "client_count": len(records),
        "totals": encode_totals(totals),
        "bans": [encode_ban(ban) for ban in bans],  # at most access.BAN_LIMIT (1000, about 100 KiB)
        "rules": [encode_rule(rule) for rule in rules],
        "lost": lost,
        "data_dropped": data_dropped,
    }
    return [header, *(_page("snapshot_clients", page) for page in pages(records))]


def _page(kind: str, clients: list[Record]) -> Record:
    return {"type": kind, "clients": clients}


def pages(records: list[Record]) -> Iterable[list[Record]]:
    return (records[start : start + PAGE_CLIENTS] for start in range(0, len(records), PAGE_CLIENTS))


def counts(
    time: str, clients: list[Record], totals: Record, bans: list[Record], data_dropped: int, rules: list[Record] | None
) -> list[Record]:
    """One tick's counts: the clients that changed in pages of PAGE_CLIENTS, each a ``counts``
    message; the last (the only one, if few changed) also carries the totals, bans and drops, and
    the rules when one was hit."""
    records: list[Record] = [{"type": "counts", "time": time, "clients": page} for page in pages(clients)]
    if not records:
        records.append({"type": "counts", "time": time, "clients": []})
    records[-1].update(totals=totals, bans=bans, data_dropped=data_dropped)
    if rules is not None:
        records[-1]["rules"] = rules
    return records


class SnapshotPages:
    """A snapshot read back whole: the header's fields and ``clients``, the list its pages carry.

    Feed it every message after the header until ``complete``; anything else in between is a
    protocol error (the server sends the pages together, nothing between them).
    """

    def __init__(self, header: Mapping[str, Any]) -> None:
        count = header.get("client_count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ProtocolError("bad_message", 'a snapshot needs a "client_count" (a number, 0 or more)')
        self._count = count
        self.snapshot: dict[str, Any] = {**header, "clients": []}

    @property
    def complete(self) -> bool:
        return len(self.snapshot["clients"]) >= self._count

    def add(self, message: Mapping[str, Any]) -> None:
        page = message.get("clients")
        if message.get("type") != "snapshot_clients" or not isinstance(page, list):
            raise ProtocolError("bad_message", f'a snapshot\'s pages were cut by a "{message.get("type")}" message')
        clients: list[Any] = self.snapshot["clients"]
        clients.extend(page)
        if len(clients) > self._count:
            raise ProtocolError("bad_message", f"a snapshot of {self._count} clients carried {len(clients)}")


def event_message(event: ServerEvent, *, peer: str, clients_now: int) -> Record:
    """An event, as the ``--json`` log writes it."""
    return {"type": "event", **encode_event(event, peer=peer, clients_now=clients_now)}


# ---- commands --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command a console may send: its fields and their JSON types, the server command it
    becomes, and what the log says about it (the issuer is added after)."""

    fields: Mapping[str, type]
    build: Callable[[Mapping[str, Any]], ServerCommand]
    describe: Callable[[Mapping[str, Any]], str]


def _data(args: Mapping[str, Any]) -> bytes:
    text = args["data_b64"]
    if len(text) > (MAX_SEND_BYTES * 4) // 3 + 4:
        raise ProtocolError("too_big", f"at most {MAX_SEND_BYTES} bytes per send")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_value", '"data_b64" is not valid base64') from None
    if not data:
        raise ProtocolError("bad_value", "nothing to send: the data is empty")
    return data


def _faults(args: Mapping[str, Any]) -> Faults | None:
    """A fault spec, or ``clear``; a bad spec is refused and nothing changes."""
    spec = args["faults"].strip()
    if spec == CLEAR_FAULTS:
        return None
    try:
        return parse_faults(spec)
    except FaultSpecError as exc:
        raise ProtocolError("bad_value", str(exc)) from None


def data_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _address(args: Mapping[str, Any]) -> str:
    """An IP address, as a client's peer names it (a ban is of an address, never of a name)."""
    text: str = args["address"]
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        raise ProtocolError("bad_value", f"not an IP address: {text[:64]!r}") from None
    return text


def _label(args: Mapping[str, Any]) -> str:
    text: str = args["text"]
    if len(text.strip()) > MAX_LABEL_CHARS:
        raise ProtocolError("bad_value", f"a label has at most {MAX_LABEL_CHARS} characters")
    return text


def _ids(args: Mapping[str, Any]) -> tuple[int, ...]:
    ids = args["clients"]
    if len(ids) > MAX_CLIENT_IDS:
        raise ProtocolError("too_big", f"at most {MAX_CLIENT_IDS} client ids in one command")
    if any(isinstance(value, bool) or not isinstance(value, int) or value < 1 for value in ids):
        raise ProtocolError("bad_value", '"clients" must be a list of client ids (each 1 or more)')
    return tuple(ids)


def _for_clients(action: ClientAction) -> CommandSpec:
    """``kick_clients``, ``send_clients``, ``ban_clients``: one command for a fixed set of clients."""
    fields: dict[str, type] = {"clients": list}
    if action is ClientAction.SEND:
        fields["data_b64"] = str
    return CommandSpec(
        fields,
        lambda a: ForClients(action, _ids(a), _data(a) if action is ClientAction.SEND else b""),
        lambda a: f"{action} for {len(a['clients'])} listed clients",
    )


# The command table: ban, unban and rules slot in here as they arrive. "client" fields are
# checked against the live clients before the command runs.
COMMANDS: dict[str, CommandSpec] = {
    "kick": CommandSpec({"client": int}, lambda a: Kick(a["client"]), lambda a: f"#{a['client']} kicked"),
    "kick_all": CommandSpec({}, lambda a: KickAll(), lambda a: "every client kicked"),
    "send": CommandSpec(
        {"client": int, "data_b64": str},
        lambda a: SendTo(a["client"], _data(a)),
        lambda a: f"{format_size(len(_data(a)))} sent to #{a['client']}",
    ),
    "broadcast": CommandSpec(
        {"data_b64": str},
        lambda a: Broadcast(_data(a)),
        lambda a: f"{format_size(len(_data(a)))} broadcast to every client",
    ),
    "ban": CommandSpec({"client": int}, lambda a: Ban(a["client"]), lambda a: f"#{a['client']}'s address banned"),
    "ban_address": CommandSpec(
        {"address": str}, lambda a: BanAddress(_address(a)), lambda a: f"{a['address']} banned (as on another server)"
    ),
    "unban": CommandSpec({"address": str}, lambda a: Unban(a["address"]), lambda a: f"ban on {a['address']} lifted"),
    "fault": CommandSpec(
        {"client": int, "faults": str},
        lambda a: SetFaults(a["client"], _faults(a), "console"),
        lambda a: f"#{a['client']}: fault {a['faults'].strip()}",
    ),
    "label": CommandSpec(
        {"client": int, "text": str},
        lambda a: Label(a["client"], _label(a)),
        lambda a: f"#{a['client']} labelled",
    ),
    **{f"{action}_clients": _for_clients(action) for action in ClientAction},
    "stop": CommandSpec({}, lambda a: Shutdown(), lambda a: "server stop requested"),
    "reload": CommandSpec({}, lambda a: Reload(), lambda a: "reload requested"),
}


@dataclass(frozen=True, slots=True)
class Request:
    request_id: int | str
    name: str
    spec: CommandSpec
    args: Mapping[str, Any]

    def command(self) -> ServerCommand:
        return self.spec.build(self.args)

    def describe(self) -> str:
        return self.spec.describe(self.args)


def parse_command(message: Mapping[str, Any]) -> Request:
    """A ``command`` message, checked against the table (raises ProtocolError)."""
    request_id = message.get("id")
    if message.get("type") != "command":
        raise ProtocolError("unknown_type", f'unknown message type "{message.get("type")}"', request_id)
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        raise ProtocolError("bad_id", 'a command needs an "id" (a number or a string)', None)
    name = message.get("command")
    spec = COMMANDS.get(name) if isinstance(name, str) else None
    if spec is None or not isinstance(name, str):
        known = ", ".join(sorted(COMMANDS))
        raise ProtocolError("unknown_command", f"unknown command {name!r}; known: {known}", request_id)
    args: dict[str, Any] = {}
    for field, kind in spec.fields.items():
        value = message.get(field)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ProtocolError("bad_type", f'{name}: "{field}" must be a {kind.__name__}', request_id)
        if field == "client" and isinstance(value, int) and value < 1:
            raise ProtocolError("bad_value", f'{name}: "client" must be a client id (1 or more)', request_id)
        args[field] = value
    request = Request(request_id, name, spec, args)
    try:
        request.command()  # checks the values (base64, sizes) before anything runs
    except ProtocolError as exc:
        raise ProtocolError(exc.code, f"{name}: {exc.message}", request_id) from None
    return request


class RecordError(Exception):
    """A recording that cannot start or stop (a file it cannot make, none running): the reply's message."""


@dataclass(frozen=True, slots=True)
class RecordRequest:
    request_id: int | str
    action: str  # start, stop, status
    path: str  # start's file, as the console gave it


def parse_record(message: Mapping[str, Any]) -> RecordRequest:
    """``{"command": "record", "action": "start", "path": FILE}``, ``"stop"`` or ``"status"`` (ProtocolError)."""
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        raise ProtocolError("bad_id", 'a command needs an "id" (a number or a string)', None)
    action = message.get("action")
    if action not in ("start", "stop", "status"):
        raise ProtocolError("bad_value", 'record: "action" must be start, stop or status', request_id)
    path = message.get("path", "")
    if action == "start" and (not isinstance(path, str) or not path):
        raise ProtocolError("bad_type", 'record start: "path" must be a file name', request_id)
    return RecordRequest(request_id, action, path if isinstance(path, str) else "")


def command_message(request_id: int, name: str, **fields: object) -> Record:
    return {"type": "command", "id": request_id, "command": name, **fields}


def done_fields(command: ServerCommand, done: Done) -> Record:
    """What a reply adds: for a command on many clients, how many it acted on and the ids already gone;
    for a reload, what it did."""
    if isinstance(command, ForClients):
        return {"acted": done.acted, "gone": list(done.gone)}
    if isinstance(command, Reload):
        return {"message": done.message}
    return {}


def reply(request_id: object, *, error: ProtocolError | None = None, **fields: object) -> Record:
    if error is None:
        return {"type": "reply", "id": request_id, "ok": True, **fields}
    return {"type": "reply", "id": request_id, "ok": False, "error": error.code, "message": error.message}


def error_message(error: ProtocolError) -> Record:
    """An error that answers no command (bad JSON, a half line, a bad hello)."""
    return {"type": "error", "error": error.code, "message": error.message}


def command_request(command: ServerCommand) -> tuple[str, dict[str, object]]:
    """The command message (name and fields) that asks a server for ``command``."""
    match command:
        case Kick(client_id):
            return "kick", {"client": client_id}
        case KickAll():
            return "kick_all", {}
        case SendTo(client_id, data):
            return "send", {"client": client_id, "data_b64": data_b64(data)}
        case Broadcast(data):
            return "broadcast", {"data_b64": data_b64(data)}
        case Ban(client_id):
            return "ban", {"client": client_id}
        case BanAddress(address):
            return "ban_address", {"address": address}
        case Unban(address):
            return "unban", {"address": address}
        case SetFaults(client_id, faults):
            return "fault", {"client": client_id, "faults": CLEAR_FAULTS if faults is None else format_faults(faults)}
        case Label(client_id, text):
            return "label", {"client": client_id, "text": text}
        case ForClients(action, client_ids, data):
            fields: dict[str, object] = {"clients": list(client_ids)}
            if action is ClientAction.SEND:
                fields["data_b64"] = data_b64(data)
            return f"{action}_clients", fields
        case Shutdown():
            return "stop", {}
        case Reload():
            return "reload", {}
        case _:
            assert_never(command)
