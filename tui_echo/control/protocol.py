"""The control protocol: newline-delimited JSON between a server and its consoles. No trio, no Textual.

Both ends use this module: the server encodes its state and events and
parses commands; consoles decode what the server sends back into the same
event and state types the in-process monitor reads. The README's "Control
protocol" section is the reference for other clients.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from tui_echo.event_records import Record, event_record, to_json, utc_time
from tui_echo.server.clients import ClientState, ClientStatus
from tui_echo.server.access import ActiveBan
from tui_echo.server.commands import Ban, Broadcast, Kick, KickAll, SendTo, ServerCommand, Shutdown, Unban
from tui_echo.server.rules import RuleHits
from tui_echo.server.config import Mode, ServerConfig
from tui_echo.server.events import (
    EVENT_DATA_BYTES,
    ClientConnected,
    ClientDisconnected,
    ConnectionRefused,
    DataAnswered,
    DataBroadcast,
    DataDiscarded,
    DataReceived,
    DataRelayed,
    DataSent,
    DisconnectReason,
    Peer,
    RefusalReason,
    ServerEvent,
    ServerNotice,
    ServerStopped,
    ServerTotals,
)
from tui_echo.text import format_address, format_size

PROTOCOL = "tui-echo-control"
VERSION = 1
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


def encode(record: Record) -> bytes:
    return (to_json(record) + "\n").encode("ascii")


def decode(line: bytes) -> dict[str, Any]:
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


def check_hello(message: Mapping[str, Any]) -> None:
    if message.get("type") != "hello":
        raise ProtocolError("hello_first", f'the first message must be a hello, got "{message.get("type")}"')
    if message.get("protocol") != PROTOCOL:
        raise ProtocolError("bad_protocol", f'the hello must say "protocol": "{PROTOCOL}"')
    if message.get("version") != VERSION:
        raise ProtocolError("bad_version", f"this end speaks version {VERSION}, not {message.get('version')!r}")


# ---- state: snapshots and counts -----------------------------------------


def parse_time(text: object) -> float:
    if not isinstance(text, str):
        raise ValueError(f"not a time: {text!r}")
    return datetime.fromisoformat(text).timestamp()


def client_record(state: ClientState) -> Record:
    """A count record, plus who the client is."""
    return {"peer": format_address(state.peer), "connected": utc_time(state.connected_at), **count_record(state)}


def count_record(state: ClientState) -> Record:
    return {
        "client": state.client_id,
        "last_activity": utc_time(state.last_activity),
        "messages_in": state.messages_in,
        "bytes_in": state.bytes_in,
        "bytes_out": state.bytes_out,
        "dropped_out": state.dropped_out,
        "status": str(state.status),
    }


def totals_record(totals: ServerTotals) -> Record:
    return {
        "clients_total": totals.clients_total,
        "clients_now": totals.clients_now,
        "clients_peak": totals.clients_peak,
        "refused_total": totals.refused_total,
        "messages_in": totals.messages_in,
        "bytes_in": totals.bytes_in,
        "bytes_out": totals.bytes_out,
        "dropped_out": totals.dropped_out,
        "events_skipped": totals.events_skipped,
        "tls_handshakes_failed": totals.tls_handshakes_failed,
        "rule_hits": list(totals.rule_hits),
    }


def server_record(
    *, pid: int, version: str, addresses: tuple[Peer, ...], control: str, started_at: float, config: ServerConfig
) -> Record:
    host, port = addresses[0]
    return {
        "pid": pid,
        "version": version,
        "host": host,
        "port": port,
        "addresses": [format_address(a) for a in addresses],
        "control": control,
        "started": utc_time(started_at),
        "mode": str(config.mode),
        "framing": str(config.framing),
        "max_clients": config.max_clients,
        "idle_timeout": config.idle_timeout,
        "write_timeout": config.write_timeout,
    }


def snapshot(
    server: Record,
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
        "server": server,
        "clients": [client_record(state) for state in clients],
        "totals": totals_record(totals),
        "bans": bans_record(bans),
        "rules": rules_record(rules),
        "lost": lost,
        "data_dropped": data_dropped,
    }


def bans_record(bans: Iterable[ActiveBan]) -> list[Record]:
    return [{"address": ban.address, "until": utc_time(ban.until)} for ban in bans]


def decode_bans(records: Iterable[Mapping[str, Any]]) -> tuple[ActiveBan, ...]:
    return tuple(ActiveBan(str(record["address"]), parse_time(record["until"])) for record in records)


def rules_record(rules: Iterable[RuleHits]) -> list[Record]:
    """The reply rules with their hits; ``last_match`` is escaped as the log's data is (inert)."""
    return [
        {
            "rule": rule.number,
            "match": rule.match,
            "reply": rule.reply,
            "once": rule.once,
            "hits": rule.hits,
            "last_match": rule.last_match,
            "last_client": rule.last_client,
            "last_time": None if rule.last_at is None else utc_time(rule.last_at),
        }
        for rule in rules
    ]


def decode_rules(records: Iterable[Mapping[str, Any]]) -> tuple[RuleHits, ...]:
    return tuple(
        RuleHits(
            number=int(record["rule"]),
            match=str(record["match"]),
            reply=str(record["reply"]),
            once=bool(record["once"]),
            hits=int(record["hits"]),
            last_match=None if record.get("last_match") is None else str(record["last_match"]),
            last_client=None if record.get("last_client") is None else int(record["last_client"]),
            last_at=None if record.get("last_time") is None else parse_time(record["last_time"]),
        )
        for record in records
    )


def _address(text: str) -> Peer:
    host, _, port = text.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def decode_client(record: Mapping[str, Any]) -> ClientState:
    return ClientState(
        client_id=int(record["client"]),
        peer=_address(str(record["peer"])),
        connected_at=parse_time(record["connected"]),
        last_activity=parse_time(record["last_activity"]),
        messages_in=int(record["messages_in"]),
        bytes_in=int(record["bytes_in"]),
        bytes_out=int(record["bytes_out"]),
        dropped_out=int(record.get("dropped_out", 0)),
        status=ClientStatus(record["status"]),
    )


def apply_counts(state: ClientState, record: Mapping[str, Any]) -> None:
    state.last_activity = parse_time(record["last_activity"])
    state.messages_in = int(record["messages_in"])
    state.bytes_in = int(record["bytes_in"])
    state.bytes_out = int(record["bytes_out"])
    state.dropped_out = int(record.get("dropped_out", 0))
    state.status = ClientStatus(record["status"])


def decode_totals(record: Mapping[str, Any]) -> ServerTotals:
    def count(name: str) -> int:
        return int(record.get(name, 0))

    return ServerTotals(
        clients_total=count("clients_total"),
        clients_now=count("clients_now"),
        clients_peak=count("clients_peak"),
        refused_total=count("refused_total"),
        messages_in=count("messages_in"),
        bytes_in=count("bytes_in"),
        bytes_out=count("bytes_out"),
        events_skipped=count("events_skipped"),
        tls_handshakes_failed=count("tls_handshakes_failed"),
        rule_hits=tuple(int(hits) for hits in record.get("rule_hits", ())),
        dropped_out=count("dropped_out"),
    )


def server_addresses(server: Mapping[str, Any]) -> tuple[Peer, ...]:
    return tuple(_address(str(text)) for text in server["addresses"])


# ---- events -----------------------------------------------------------


def event_message(event: ServerEvent, *, peer: str, clients_now: int) -> Record:
    """An event in the ``--json`` log's vocabulary, plus the exact bytes of data (``data_b64``)."""
    record: Record = {"type": "event", **event_record(event, peer=peer, clients_now=clients_now)}
    if isinstance(event, DataReceived | DataSent | DataBroadcast):
        record["data_b64"] = data_b64(event.data[:EVENT_DATA_BYTES])
    if isinstance(event, DataReceived):
        record["messages"] = event.messages
    if isinstance(event, DataAnswered):
        record["reply_b64"] = data_b64(event.reply[:EVENT_DATA_BYTES])
    return record


def _disconnect_reason(text: str) -> tuple[DisconnectReason, str]:
    kind, _, error = text.partition(": ")
    return DisconnectReason(kind), error


def decode_event(record: Mapping[str, Any]) -> ServerEvent | None:
    """The event an ``event`` message describes; ``None`` for a kind this console does not know.

    Raises ValueError (or KeyError, TypeError) when a known kind is malformed.
    """
    kind = record.get("event")
    at = parse_time(record.get("time"))
    if kind == "data":
        fields: dict[str, Any] = {
            "client_id": int(record["client"]),
            "data": base64.b64decode(record["data_b64"], validate=True),
            "size": int(record["len"]),
            "at": at,
            "messages": int(record["messages"]),
            "messages_in": int(record["messages_in"]),
            "bytes_in": int(record["bytes_in"]),
            "bytes_out": int(record["bytes_out"]),
        }
        mode = Mode(record.get("mode", Mode.ECHO))
        if mode.relays:
            return DataRelayed(
                **fields, mode=mode, recipients=int(record["recipients"]), dropped=int(record["dropped"])
            )
        if "answered" in record:
            return DataAnswered(
                **fields,
                answered=int(record["answered"]),
                rules=tuple(int(number) for number in record["rules"]),
                reply=base64.b64decode(record["reply_b64"], validate=True),
                reply_size=int(record["reply_len"]),
            )
        return DataDiscarded(**fields) if mode is Mode.DISCARD else DataReceived(**fields)
    if kind == "sent":
        return DataSent(
            client_id=int(record["client"]),
            data=base64.b64decode(record["data_b64"], validate=True),
            size=int(record["len"]),
            at=at,
            bytes_out=int(record["bytes_out"]),
        )
    if kind == "broadcast":
        return DataBroadcast(
            data=base64.b64decode(record["data_b64"], validate=True),
            size=int(record["len"]),
            at=at,
            recipients=int(record["recipients"]),
        )
    if kind == "connected":
        return ClientConnected(client_id=int(record["client"]), peer=_address(str(record["peer"])), at=at)
    if kind == "refused":
        return ConnectionRefused(
            client_id=int(record["client"]),
            peer=_address(str(record["peer"])),
            at=at,
            reason=RefusalReason(record["reason"]),
        )
    if kind == "disconnected":
        reason, error = _disconnect_reason(str(record["reason"]))
        return ClientDisconnected(
            client_id=int(record["client"]),
            peer=_address(str(record["peer"])),
            at=at,
            reason=reason,
            error=error,
            connected_at=at - float(record["seconds"]),
            messages_in=int(record["messages_in"]),
            bytes_in=int(record["bytes_in"]),
            bytes_out=int(record["bytes_out"]),
            dropped_out=int(record.get("dropped_out", 0)),
        )
    if kind == "notice":
        return ServerNotice(message=str(record["message"]), at=at)
    if kind == "stopped":
        return ServerStopped(
            at=at,
            totals=ServerTotals(
                clients_total=int(record["clients_total"]),
                clients_now=0,
                clients_peak=0,
                refused_total=int(record["refused_total"]),
                messages_in=int(record["messages_in"]),
                bytes_in=int(record["bytes_in"]),
                bytes_out=int(record["bytes_out"]),
                events_skipped=int(record["events_skipped"]),
                dropped_out=int(record.get("dropped_out", 0)),
            ),
        )
    return None


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
        case Shutdown():
            return "stop", {}
        case _:
            assert_never(command)
