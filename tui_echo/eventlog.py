"""Turn server events into log lines (human or JSON Lines) at a rate a person can read.

Pure logic, no trio: ``EventLog.handle`` takes an event and returns lines,
``EventLog.tick`` (about once a second) returns the summaries of busy
clients. Data lines are printed one by one while a client and the server are
quiet; past ``per_client`` lines a second for a client, or ``overall`` lines a
second in all, a client's data is folded into one summary line a second
(and stays so while it keeps busy), with exact counts taken from the
server's running totals, which also cover data events the server skipped
under load.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from tui_echo.config import ServerConfig
from tui_echo.escape import escape_bytes, preview
from tui_echo.events import (
    ClientConnected,
    ClientDisconnected,
    DataEchoed,
    DataSent,
    ServerEvent,
    ServerListening,
    ServerNotice,
    ServerStopped,
)
from tui_echo.listeners import describe_addresses, format_address
from tui_echo.units import format_size, plural

HUMAN_PREVIEW_BYTES = 80
JSON_DATA_BYTES = 1024


@dataclass(slots=True)
class _ClientLog:
    """What the log knows of one client: its label, and how far its printed lines go."""

    client_id: int
    peer: str
    shown_at: float  # when the client's data was last printed (or it connected)
    shown_messages: int = 0  # the client's totals as of that line
    shown_bytes: int = 0
    lines_this_window: int = 0
    folded_this_window: bool = False
    busy: bool = False  # folded in the last window: summaries only until it calms down
    latest: DataEchoed | None = None

    @property
    def label(self) -> str:
        return f"#{self.client_id}"


@dataclass(frozen=True, slots=True)
class Summary:
    """A client's data not printed line by line: ``messages`` and ``bytes_in`` over ``seconds``."""

    at: float
    messages: int
    bytes_in: int
    seconds: float
    messages_total: int
    bytes_total: int


class LogFormat(Protocol):
    def listening(self, event: ServerListening, config: ServerConfig) -> str: ...
    def connected(self, event: ClientConnected, client: _ClientLog, clients_now: int) -> str: ...
    def data(self, event: DataEchoed, client: _ClientLog) -> str: ...
    def sent(self, event: DataSent, client: _ClientLog) -> str: ...
    def summary(self, summary: Summary, client: _ClientLog) -> str: ...
    def disconnected(self, event: ClientDisconnected, client: _ClientLog, clients_now: int) -> str: ...
    def notice(self, event: ServerNotice) -> str: ...
    def stopped(self, event: ServerStopped) -> str: ...


def _local_time(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _client_line(at: float, client: _ClientLog, text: str) -> str:
    return f"{_local_time(at)}  {client.label} {client.peer}  {text}"


class HumanFormat:
    def listening(self, event: ServerListening, config: ServerConfig) -> str:
        limits = [
            f"framing {config.framing}",
            f"max clients {config.max_clients if config.max_clients is not None else 'unlimited'}",
            f"idle timeout {f'{config.idle_timeout:g} s' if config.idle_timeout else 'off'}",
        ]
        return f"{_local_time(event.at)}  listening on {describe_addresses(event.addresses)} ({', '.join(limits)})"

    def connected(self, event: ClientConnected, client: _ClientLog, clients_now: int) -> str:
        return _client_line(event.at, client, f"connected ({clients_now} now)")

    def data(self, event: DataEchoed, client: _ClientLog) -> str:
        return _client_line(
            event.at,
            client,
            f"msg {event.messages_in}  "
            f"echoed {format_size(len(event.data))}: {preview(event.data, HUMAN_PREVIEW_BYTES)}",
        )

    def sent(self, event: DataSent, client: _ClientLog) -> str:
        return _client_line(
            event.at,
            client,
            f"operator sent {format_size(len(event.data))}: {preview(event.data, HUMAN_PREVIEW_BYTES)}",
        )

    def summary(self, summary: Summary, client: _ClientLog) -> str:
        return _client_line(
            summary.at,
            client,
            "busy, lines coalesced: "
            f"+{plural(summary.messages, 'msg')}, +{format_size(summary.bytes_in)} in {summary.seconds:.1f} s; "
            f"total {plural(summary.messages_total, 'msg')}, {format_size(summary.bytes_total)} in",
        )

    def disconnected(self, event: ClientDisconnected, client: _ClientLog, clients_now: int) -> str:
        if event.refused:
            return _client_line(event.at, client, f"{event.reason} ({clients_now} connected)")
        return _client_line(
            event.at,
            client,
            f"disconnected: {event.reason} "
            f"({plural(event.messages_in, 'msg')}, {format_size(event.bytes_in)} in, "
            f"{format_size(event.bytes_out)} out, {event.at - event.connected_at:.1f} s; {clients_now} now)",
        )

    def notice(self, event: ServerNotice) -> str:
        return f"{_local_time(event.at)}  notice: {event.message}"

    def stopped(self, event: ServerStopped) -> str:
        skipped = f", {event.events_skipped} data events not logged (busy)" if event.events_skipped else ""
        return (
            f"{_local_time(event.at)}  server stopped: {plural(event.clients_total, 'client')}, "
            f"{event.refused_total} refused, {plural(event.messages_in, 'msg')}, {format_size(event.bytes_in)} in, "
            f"{format_size(event.bytes_out)} out{skipped}"
        )


def _utc_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(record: dict[str, object]) -> str:
    # ensure_ascii: the line is plain ASCII whatever the client sent.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"))


def _client_json(kind: str, at: float, client: _ClientLog, **fields: object) -> str:
    return _json({"event": kind, "time": _utc_time(at), "client": client.client_id, "peer": client.peer, **fields})


def _json_data(data: bytes) -> dict[str, object]:
    text, truncated = escape_bytes(data, JSON_DATA_BYTES)
    return {"len": len(data), "data": text, "truncated": truncated}


class JsonFormat:
    def listening(self, event: ServerListening, config: ServerConfig) -> str:
        host, port = event.addresses[0]
        return _json(
            {
                "event": "listening",
                "time": _utc_time(event.at),
                "host": host,
                "port": port,
                "addresses": [format_address(a) for a in event.addresses],
                "framing": str(config.framing),
                "max_clients": config.max_clients,
                "idle_timeout": config.idle_timeout,
            }
        )

    def connected(self, event: ClientConnected, client: _ClientLog, clients_now: int) -> str:
        return _client_json("connected", event.at, client, clients_now=clients_now)

    def data(self, event: DataEchoed, client: _ClientLog) -> str:
        return _client_json(
            "data",
            event.at,
            client,
            **_json_data(event.data),
            messages_in=event.messages_in,
            bytes_in=event.bytes_in,
            bytes_out=event.bytes_out,
        )

    def sent(self, event: DataSent, client: _ClientLog) -> str:
        return _client_json("sent", event.at, client, **_json_data(event.data), bytes_out=event.bytes_out)

    def summary(self, summary: Summary, client: _ClientLog) -> str:
        return _client_json(
            "data_summary",
            summary.at,
            client,
            messages=summary.messages,
            bytes=summary.bytes_in,
            seconds=round(summary.seconds, 3),
            messages_in=summary.messages_total,
            bytes_in=summary.bytes_total,
            note="busy client: data events coalesced",
        )

    def disconnected(self, event: ClientDisconnected, client: _ClientLog, clients_now: int) -> str:
        return _client_json(
            "disconnected",
            event.at,
            client,
            reason=event.reason,
            messages_in=event.messages_in,
            bytes_in=event.bytes_in,
            bytes_out=event.bytes_out,
            seconds=round(event.at - event.connected_at, 3),
            clients_now=clients_now,
        )

    def notice(self, event: ServerNotice) -> str:
        return _json({"event": "notice", "time": _utc_time(event.at), "message": event.message})

    def stopped(self, event: ServerStopped) -> str:
        return _json(
            {
                "event": "stopped",
                "time": _utc_time(event.at),
                "clients_total": event.clients_total,
                "refused_total": event.refused_total,
                "messages_in": event.messages_in,
                "bytes_in": event.bytes_in,
                "bytes_out": event.bytes_out,
                "events_skipped": event.events_skipped,
            }
        )


@dataclass(slots=True)
class EventLog:
    config: ServerConfig
    format: LogFormat
    per_client: int = 5  # data lines a second for one client before it is summarised
    overall: int = 20  # data lines a second for the whole server before busy clients are summarised
    window_seconds: float = 1.0
    _clients: dict[int, _ClientLog] = field(default_factory=dict)
    window_start: float = field(default_factory=time.time)
    _lines_this_window: int = 0

    def handle(self, event: ServerEvent) -> list[str]:
        match event:
            case DataEchoed():
                return self._data(event)
            case DataSent():
                return [self.format.sent(event, self._client(event.client_id, event.at))]
            case ClientConnected():
                client = _ClientLog(event.client_id, format_address(event.peer), event.at)
                self._clients[event.client_id] = client
                return [self.format.connected(event, client, len(self._clients))]
            case ClientDisconnected():
                known = self._clients.pop(event.client_id, None)
                # A refused client never connected, so the log does not know it yet.
                client = known or _ClientLog(event.client_id, format_address(event.peer), event.at)
                lines = self._catch_up(client, event.at, event.messages_in, event.bytes_in)
                lines.append(self.format.disconnected(event, client, len(self._clients)))
                return lines
            case ServerListening():
                return [self.format.listening(event, self.config)]
            case ServerNotice():
                return [self.format.notice(event)]
            case ServerStopped():
                return [self.format.stopped(event)]
        raise TypeError(f"not a server event: {event!r}")

    def tick(self, now: float) -> list[str]:
        """Summaries of what busy clients sent since their last line; call about once a second."""
        if now - self.window_start < self.window_seconds:
            return []
        self.window_start = now
        self._lines_this_window = 0
        lines = []
        for client in self._clients.values():
            client.busy = client.folded_this_window
            client.folded_this_window = False
            client.lines_this_window = 0
            if client.latest is not None:
                lines += self._catch_up(client, now, client.latest.messages_in, client.latest.bytes_in)
        return lines

    def _client(self, client_id: int, now: float) -> _ClientLog:
        client = self._clients.get(client_id)
        if client is None:  # a client that connected before this log started
            client = self._clients[client_id] = _ClientLog(client_id, "?", now)
        return client

    def _data(self, event: DataEchoed) -> list[str]:
        client = self._client(event.client_id, event.at)
        client.latest = event
        if client.busy or client.lines_this_window >= self.per_client or self._lines_this_window >= self.overall:
            client.folded_this_window = True
            return []  # folded into the client's next summary
        client.lines_this_window += 1
        self._lines_this_window += 1
        # Data before this event that was folded or skipped gets its summary first.
        lines = self._catch_up(client, event.at, event.messages_in - event.messages, event.bytes_in - len(event.data))
        lines.append(self.format.data(event, client))
        self._mark_shown(client, event.at, event.messages_in, event.bytes_in)
        return lines

    def _catch_up(self, client: _ClientLog, now: float, messages_total: int, bytes_total: int) -> list[str]:
        messages = messages_total - client.shown_messages
        bytes_in = bytes_total - client.shown_bytes
        if messages <= 0 and bytes_in <= 0:
            return []
        summary = Summary(
            at=now,
            messages=messages,
            bytes_in=bytes_in,
            seconds=now - client.shown_at,
            messages_total=messages_total,
            bytes_total=bytes_total,
        )
        self._mark_shown(client, now, messages_total, bytes_total)
        return [self.format.summary(summary, client)]

    @staticmethod
    def _mark_shown(client: _ClientLog, now: float, messages_total: int, bytes_total: int) -> None:
        client.shown_at = now
        client.shown_messages = messages_total
        client.shown_bytes = bytes_total
