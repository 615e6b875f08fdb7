"""Server events as records: one ``encode_*`` and one ``decode_*`` per kind, side by side.

The ``--json`` log writes these records one a line, the control protocol
sends them as ``event`` messages, and recordings keep them. Every record has
``event`` (its kind) and ``time``. Two fields are the writer's context, not
the event's: ``peer`` on ``data``, ``sent`` and ``labelled`` (the events carry only the
client's id) and ``clients_now`` on ``connected``, ``refused`` and
``disconnected``. Decoding ignores them.

Client bytes come twice in ``data``, ``sent`` and ``broadcast``: escaped for
people (``data``, inert whatever was sent) and exact for programs
(``data_b64``); so does a rule's reply in an answered ``data`` (``reply`` and
``reply_b64``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

from tui_echo.net import format_address
from tui_echo.server.config import Mode
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    ConnectionRefused,
    DataAnswered,
    DataBroadcast,
    DataDiscarded,
    DataReceived,
    DataRelayed,
    DataSent,
    DataCorrupted,
    DisconnectReason,
    FaultChanged,
    RefusalReason,
    RefusalsSummary,
    ServerEvent,
    ServerListening,
    ClientLabelled,
    ServerNotice,
    ServerStopped,
)
from tui_echo.times import utc_time
from tui_echo.wire.records import (
    Fields,
    Record,
    data_fields,
    read_bool,
    optional_time,
    exact_data,
    read_data,
    read_float,
    read_int,
    read_int_list,
    read_object,
    read_optional_int,
    read_optional_str,
    read_optional_peer,
    read_optional_time,
    read_peer,
    read_str,
    read_time,
)
from tui_echo.wire.settings import decode_setup, encode_setup
from tui_echo.wire.state import decode_totals, encode_totals


def _head(kind: str, at: float) -> Record:
    return {"event": kind, "time": utc_time(at)}


# ---- the server's start ------------------------------------------------------------------------------


def encode_listening(event: ServerListening) -> Record:
    """Where the server listens and with which settings (``wire.settings``); consoles get the same in the
    server record, so the control protocol never sends this event."""
    return {**_head("listening", event.at), **encode_setup(event.addresses, event.config, event.control)}


def decode_listening(record: Fields) -> ServerListening:
    addresses, config, control = decode_setup(record)
    return ServerListening(addresses=addresses, at=read_time(record), config=config, control=control)


# ---- a client's life -------------------------------------------------------------------------------


def encode_connected(event: ClientConnected, clients_now: int = 0) -> Record:
    record: Record = {**_head("connected", event.at), "client": event.client_id, "peer": format_address(event.peer)}
    record["clients_now"] = clients_now
    if event.tls_version is not None:
        record["tls_version"] = event.tls_version
    if event.tls_cipher is not None:
        record["tls_cipher"] = event.tls_cipher
    if event.proxy is not None:
        record["proxy"] = format_address(event.proxy)
    return record


def decode_connected(record: Fields) -> ClientConnected:
    return ClientConnected(
        client_id=read_int(record, "client"),
        peer=read_peer(record),
        at=read_time(record),
        tls_version=read_optional_str(record, "tls_version"),
        tls_cipher=read_optional_str(record, "tls_cipher"),
        proxy=read_optional_peer(record, "proxy"),
    )


def encode_refused(event: ConnectionRefused, clients_now: int = 0) -> Record:
    return {
        **_head("refused", event.at),
        "client": event.client_id,
        "peer": format_address(event.peer),
        "reason": str(event.reason),
        "clients_now": clients_now,
    }


def decode_refused(record: Fields) -> ConnectionRefused:
    return ConnectionRefused(
        client_id=read_int(record, "client"),
        peer=read_peer(record),
        at=read_time(record),
        reason=RefusalReason(read_str(record, "reason")),
    )


def encode_refused_summary(event: RefusalsSummary) -> Record:
    return {
        **_head("refused_summary", event.at),
        "seconds": round(event.seconds, 3),
        "refused": event.total,
        "reasons": {str(reason): count for reason, count in event.counts.items()},
    }


def decode_refused_summary(record: Fields) -> RefusalsSummary:
    reasons = read_object(record, "reasons")
    return RefusalsSummary(
        at=read_time(record),
        seconds=read_float(record, "seconds"),
        counts={RefusalReason(reason): read_int(reasons, reason) for reason in reasons},
    )


def encode_disconnected(event: ClientDisconnected, clients_now: int = 0) -> Record:
    return {
        **_head("disconnected", event.at),
        "client": event.client_id,
        "peer": format_address(event.peer),
        "reason": event.why,  # "kicked", or "error: connection reset by peer"
        "messages_in": event.messages_in,
        "bytes_in": event.bytes_in,
        "bytes_out": event.bytes_out,
        "dropped_out": event.dropped_out,
        "seconds": round(event.at - event.connected_at, 3),
        "connected": utc_time(event.connected_at),
        "clients_now": clients_now,
    }


def decode_disconnected(record: Fields) -> ClientDisconnected:
    reason, _, error = read_str(record, "reason").partition(": ")
    return ClientDisconnected(
        client_id=read_int(record, "client"),
        peer=read_peer(record),
        at=read_time(record),
        reason=DisconnectReason(reason),
        error=error,
        connected_at=read_time(record, "connected"),
        messages_in=read_int(record, "messages_in"),
        bytes_in=read_int(record, "bytes_in"),
        bytes_out=read_int(record, "bytes_out"),
        dropped_out=read_int(record, "dropped_out"),
    )


def encode_labelled(event: ClientLabelled, peer: str = "") -> Record:
    """A client's new label (``""``: taken away), and the rule that set it (``null``: the operator)."""
    return {
        **_head("labelled", event.at),
        "client": event.client_id,
        "peer": peer,
        "label": event.label,
        "rule": event.rule,
    }


def decode_labelled(record: Fields) -> ClientLabelled:
    return ClientLabelled(
        client_id=read_int(record, "client"),
        label=read_str(record, "label"),
        at=read_time(record),
        rule=read_optional_int(record, "rule"),
    )


# ---- data --------------------------------------------------------------------------------------------


def _handling(event: DataReceived) -> Record:
    """What a mode other than echo did with a message (an echoed one's record has none of these)."""
    match event:
        case DataRelayed():
            return {"mode": str(event.mode), "recipients": event.recipients, "dropped": event.dropped}
        case DataDiscarded():
            return {"mode": str(Mode.DISCARD)}
        case DataAnswered():
            reply = data_fields(event.reply, event.reply_size)
            return {
                "answered": event.answered,
                "rules": list(event.rules),
                "reply_len": event.reply_size,
                "reply": reply["data"],
                "reply_truncated": reply["truncated"],
                "reply_b64": exact_data(event.reply),
            }
        case _:
            return {}


def encode_data(event: DataReceived, peer: str = "") -> Record:
    """One chunk received (and echoed, answered, relayed or discarded: see ``mode`` and ``answered``)."""
    return {
        **_head("data", event.at),
        "client": event.client_id,
        "peer": peer,
        **data_fields(event.data, event.size),
        "messages": event.messages,
        "messages_in": event.messages_in,
        "bytes_in": event.bytes_in,
        "bytes_out": event.bytes_out,
        **_handling(event),
        **_framing(event),
        "data_b64": exact_data(event.data),
    }


def _framing(event: DataReceived) -> Record:
    """Only a piece that is not a whole message says so (most records carry neither key)."""
    return {**({"noise": True} if event.noise else {}), **({"cut": True} if event.cut else {})}


def decode_data(record: Fields) -> DataReceived:
    common: dict[str, Any] = {
        "client_id": read_int(record, "client"),
        "data": read_data(record),
        "size": read_int(record, "len"),
        "at": read_time(record),
        "messages": read_int(record, "messages"),
        "messages_in": read_int(record, "messages_in"),
        "bytes_in": read_int(record, "bytes_in"),
        "bytes_out": read_int(record, "bytes_out"),
        "noise": read_bool(record, "noise") if "noise" in record else False,
        "cut": read_bool(record, "cut") if "cut" in record else False,
    }
    mode = Mode(read_str(record, "mode")) if "mode" in record else Mode.ECHO
    if mode.relays:
        return DataRelayed(
            **common, mode=mode, recipients=read_int(record, "recipients"), dropped=read_int(record, "dropped")
        )
    if mode is Mode.DISCARD:
        return DataDiscarded(**common)
    if "answered" in record:
        return DataAnswered(
            **common,
            answered=read_int(record, "answered"),
            rules=tuple(read_int_list(record, "rules")),
            reply=read_data(record, "reply_b64"),
            reply_size=read_int(record, "reply_len"),
        )
    return DataReceived(**common)


def encode_sent(event: DataSent, peer: str = "") -> Record:
    """Bytes the operator sent to one client."""
    return {
        **_head("sent", event.at),
        "client": event.client_id,
        "peer": peer,
        **data_fields(event.data, event.size),
        "bytes_out": event.bytes_out,
        "data_b64": exact_data(event.data),
    }


def decode_sent(record: Fields) -> DataSent:
    return DataSent(
        client_id=read_int(record, "client"),
        data=read_data(record),
        size=read_int(record, "len"),
        at=read_time(record),
        bytes_out=read_int(record, "bytes_out"),
    )


def encode_broadcast(event: DataBroadcast) -> Record:
    """Bytes the operator sent to every client: one record for them all (no client, no peer)."""
    return {
        **_head("broadcast", event.at),
        **data_fields(event.data, event.size),
        "recipients": event.recipients,
        "data_b64": exact_data(event.data),
    }


def decode_broadcast(record: Fields) -> DataBroadcast:
    return DataBroadcast(
        data=read_data(record),
        size=read_int(record, "len"),
        at=read_time(record),
        recipients=read_int(record, "recipients"),
    )


# ---- faults ---------------------------------------------------------------------------------------------


def encode_fault(event: FaultChanged) -> Record:
    """``faults`` is the spec as set (empty once cleared); ``ends`` when a timed fault ends, else null."""
    return {
        **_head("fault", event.at),
        "client": event.client_id,
        "faults": event.faults,
        "by": event.by,
        "ends": optional_time(event.ends_at),
    }


def decode_fault(record: Fields) -> FaultChanged:
    return FaultChanged(
        client_id=read_int(record, "client"),
        at=read_time(record),
        faults=read_str(record, "faults"),
        by=read_str(record, "by"),
        ends_at=read_optional_time(record, "ends"),
    )


def encode_corrupted(event: DataCorrupted) -> Record:
    return {
        **_head("corrupted", event.at),
        "client": event.client_id,
        "offsets": list(event.offsets),
        "corrupted": event.corrupted,
        "corrupted_total": event.corrupted_total,
    }


def decode_corrupted(record: Fields) -> DataCorrupted:
    return DataCorrupted(
        client_id=read_int(record, "client"),
        at=read_time(record),
        offsets=tuple(read_int_list(record, "offsets")),
        corrupted=read_int(record, "corrupted"),
        corrupted_total=read_int(record, "corrupted_total"),
    )


# ---- the server's own -----------------------------------------------------------------------------


def encode_notice(event: ServerNotice) -> Record:
    return {**_head("notice", event.at), "message": event.message}


def decode_notice(record: Fields) -> ServerNotice:
    return ServerNotice(message=read_str(record, "message"), at=read_time(record))


def encode_stopped(event: ServerStopped) -> Record:
    return {**_head("stopped", event.at), **encode_totals(event.totals)}


def decode_stopped(record: Fields) -> ServerStopped:
    return ServerStopped(at=read_time(record), totals=decode_totals(record))


# ---- any event -----------------------------------------------------------------------------------------


def encode_event(event: ServerEvent, *, peer: str = "", clients_now: int = 0) -> Record:
    """The record of any event. ``peer`` names the client of ``data`` and ``sent``; ``clients_now``
    is the number of clients connected after a ``connected``, ``refused`` or ``disconnected``."""
    match event:
        case ServerListening():
            return encode_listening(event)
        case ClientConnected():
            return encode_connected(event, clients_now)
        case ConnectionRefused():
            return encode_refused(event, clients_now)
        case RefusalsSummary():
            return encode_refused_summary(event)
        case DataReceived():
            return encode_data(event, peer)
        case DataSent():
            return encode_sent(event, peer)
        case DataBroadcast():
            return encode_broadcast(event)
        case ClientDisconnected():
            return encode_disconnected(event, clients_now)
        case FaultChanged():
            return encode_fault(event)
        case DataCorrupted():
            return encode_corrupted(event)
        case ClientLabelled():
            return encode_labelled(event, peer)
        case ServerNotice():
            return encode_notice(event)
        case ServerStopped():
            return encode_stopped(event)
        case _:
            assert_never(event)


DECODERS: dict[str, Callable[[Fields], ServerEvent]] = {
    "listening": decode_listening,
    "connected": decode_connected,
    "refused": decode_refused,
    "refused_summary": decode_refused_summary,
    "data": decode_data,
    "sent": decode_sent,
    "broadcast": decode_broadcast,
    "disconnected": decode_disconnected,
    "fault": decode_fault,
    "corrupted": decode_corrupted,
    "labelled": decode_labelled,
    "notice": decode_notice,
    "stopped": decode_stopped,
}


def decode_event(record: Fields) -> ServerEvent | None:
    """The event a record describes; None for a record that is not an event (the log's ``data_summary``).

    Raises ValueError, KeyError or TypeError when a record of a known kind is malformed.
    """
    kind = record.get("event")
    decoder = DECODERS.get(kind) if isinstance(kind, str) else None
    return None if decoder is None else decoder(record)
