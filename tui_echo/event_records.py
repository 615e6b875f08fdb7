"""The one event vocabulary: server events as JSON-ready records.

The ``--json`` log writes these, one object a line; whatever else streams
events to another process uses the same names and fields. Client bytes are
escaped (``escape_bytes``), so a record is inert text whatever a client sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import assert_never

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
    RefusalsSummary,
    ServerEvent,
    ServerListening,
    ServerNotice,
    ServerStopped,
)
from tui_echo.text import escape_bytes, format_address


Record = dict[str, object]


def utc_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(record: Record) -> str:
    # ensure_ascii: the line is plain ASCII whatever the client sent.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"))


def client_record(kind: str, at: float, client_id: int, peer: str, **fields: object) -> Record:
    return {"event": kind, "time": utc_time(at), "client": client_id, "peer": peer, **fields}


def data_fields(data: bytes, size: int) -> Record:
    """A chunk's escaped text (an event carries at most EVENT_DATA_BYTES of it) and its full length."""
    text, shown = escape_bytes(data, EVENT_DATA_BYTES)
    return {"len": size, "data": text, "truncated": shown < size}


def _tls_settings(config: ServerConfig) -> Record:
    if config.tls is None:
        return {}
    return {
        "tls_fingerprint": config.tls.fingerprint,
        "tls_self_signed": config.tls.self_signed,
        "tls_handshake_timeout": config.tls.handshake_timeout,
    }


def _handling(event: DataReceived) -> Record:
    """What a mode other than echo did with a message (an echoed one's record stays as it always was)."""
    match event:
        case DataRelayed(mode=mode, recipients=recipients, dropped=dropped):
            return {"mode": str(mode), "recipients": recipients, "dropped": dropped}
        case DataDiscarded():
            return {"mode": str(Mode.DISCARD)}
        case DataAnswered(answered=answered, rules=rules, reply=reply, reply_size=reply_size):
            text, shown = escape_bytes(reply, EVENT_DATA_BYTES)
            return {
                "answered": answered,
                "rules": list(rules),
                "reply_len": reply_size,
                "reply": text,
                "reply_truncated": shown < reply_size,
            }
        case _:
            return {}


def event_record(event: ServerEvent, *, peer: str = "", clients_now: int = 0) -> Record:
    """The record of one event. ``peer`` names the client for events that carry no peer;
    ``clients_now`` is the number of clients connected after the event."""
    match event:
        case ServerListening(addresses=addresses, at=at, config=config):
            host, port = addresses[0]
            return {
                "event": "listening",
                "time": utc_time(at),
                "host": host,
                "port": port,
                "addresses": [format_address(a) for a in addresses],
                "mode": str(config.mode),
                "framing": str(config.framing),
                "max_clients": config.max_clients,
                "idle_timeout": config.idle_timeout,
                "write_timeout": config.write_timeout,
                "max_per_ip": config.max_per_ip,
                "accept_rate": config.accept_rate,
                "allow": [str(network) for network in config.allow],
                "deny": [str(network) for network in config.deny],
                "tls": config.tls is not None,
                **_tls_settings(config),
                "control": event.control or None,
                "rules": [
                    {"rule": rule.number, "match": rule.match, "reply": rule.reply, "once": rule.once}
                    for rule in config.rules
                ],
            }
        case ClientConnected(client_id=client_id, peer=address, at=at):
            tls = (
                {} if event.tls_version is None else {"tls_version": event.tls_version, "tls_cipher": event.tls_cipher}
            )
            return client_record("connected", at, client_id, format_address(address), clients_now=clients_now, **tls)
        case ConnectionRefused(client_id=client_id, peer=address, at=at, reason=reason):
            return client_record(
                "refused", at, client_id, format_address(address), reason=str(reason), clients_now=clients_now
            )
        case RefusalsSummary(at=at, seconds=seconds, counts=counts):
            return {
                "event": "refused_summary",
                "time": utc_time(at),
                "seconds": round(seconds, 3),
                "refused": event.total,
                "reasons": {str(reason): count for reason, count in counts.items()},
            }
        case DataReceived():
            return client_record(
                "data",
                event.at,
                event.client_id,
                peer,
                **data_fields(event.data, event.size),
                messages_in=event.messages_in,
                bytes_in=event.bytes_in,
                bytes_out=event.bytes_out,
                **_handling(event),
            )
        case DataSent():
            return client_record(
                "sent",
                event.at,
                event.client_id,
                peer,
                **data_fields(event.data, event.size),
                bytes_out=event.bytes_out,
            )
        case DataBroadcast(at=at, recipients=recipients):
            return {
                "event": "broadcast",
                "time": utc_time(at),
                **data_fields(event.data, event.size),
                "recipients": recipients,
            }
        case ClientDisconnected():
            return client_record(
                "disconnected",
                event.at,
                event.client_id,
                format_address(event.peer),
                reason=event.why,
                messages_in=event.messages_in,
                bytes_in=event.bytes_in,
                bytes_out=event.bytes_out,
                dropped_out=event.dropped_out,
                seconds=round(event.at - event.connected_at, 3),
                clients_now=clients_now,
            )
        case ServerNotice(message=message, at=at):
            return {"event": "notice", "time": utc_time(at), "message": message}
        case ServerStopped(at=at, totals=totals):
            return {
                "event": "stopped",
                "time": utc_time(at),
                "clients_total": totals.clients_total,
                "refused_total": totals.refused_total,
                "refused_by_reason": {str(reason): count for reason, count in totals.refused_by_reason.items()},
                "messages_in": totals.messages_in,
                "bytes_in": totals.bytes_in,
                "bytes_out": totals.bytes_out,
                "dropped_out": totals.dropped_out,
                "events_skipped": totals.events_skipped,
                "tls_handshakes_failed": totals.tls_handshakes_failed,
                "rule_hits": list(totals.rule_hits),
            }
        case _:
            assert_never(event)
