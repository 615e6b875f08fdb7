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
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from tui_echo.server.access import ActiveBan
from tui_echo.server.clients import ClientState
from tui_echo.server.commands import Ban, Broadcast, Kick, KickAll, SendTo, ServerCommand, SetFaults, Shutdown, Unban
from tui_echo.server.faults import Faults, FaultSpecError, format_faults, parse_faults
from tui_echo.server.events import ServerEvent, ServerTotals
from tui_echo.server.rules import RuleHits
from tui_echo.text import format_size
from tui_echo.wire.events import encode_event
from tui_echo.wire.records import Record, to_json
from tui_echo.wire.settings import ServerInfo, encode_server
from tui_echo.wire.state import encode_ban, encode_client, encode_rule, encode_totals

PROTOCOL = "tui-echo-control"
VERSION = 3  # goes up with every change to what either end sends (README: "The control protocol")
MAX_LINE_BYTES = 256 * 1024  # one line, either way; a send of MAX_SEND_BYTES in base64 fits
MAX_SEND_BYTES = 64 * 1024  # bytes one send or broadcast command may carry
MAX_ERRORS = 5  # protocol errors on one connection before the server closes it
COUNTS_SECONDS = 0.25  # how often a console gets fresh counts (of the clients that changed)


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
) -> Record:
    """Everything a console needs to draw the server; ``lost``: events this snapshot replaces."""
    return {
        "type": "snapshot",
        "server": encode_server(server),
        "clients": [encode_client(state) for state in clients],
        "totals": encode_totals(totals),
        "bans": [encode_ban(ban) for ban in bans],
        "rules": [encode_rule(rule) for rule in rules],
        "lost": lost,
        "data_dropped": data_dropped,
    }


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


CLEAR_FAULTS = "clear"


def data_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


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
    "unban": CommandSpec({"address": str}, lambda a: Unban(a["address"]), lambda a: f"ban on {a['address']} lifted"),
    "fault": CommandSpec(
        {"client": int, "faults": str},
        lambda a: SetFaults(a["client"], _faults(a), "console"),
        lambda a: f"#{a['client']}: fault {a['faults'].strip()}",
    ),
    "stop": CommandSpec({}, lambda a: Shutdown(), lambda a: "server stop requested"),
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


def command_message(request_id: int, name: str, **fields: object) -> Record:
    return {"type": "command", "id": request_id, "command": name, **fields}


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
        case Unban(address):
            return "unban", {"address": address}
        case SetFaults(client_id, faults):
            return "fault", {"client": client_id, "faults": CLEAR_FAULTS if faults is None else format_faults(faults)}
        case Shutdown():
            return "stop", {}
        case _:
            assert_never(command)
