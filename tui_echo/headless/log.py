"""Turn server events into log lines (human or JSON Lines) at a rate a person can read.

Pure logic, no trio: ``EventLog.handle`` takes an event and returns lines,
``EventLog.tick`` (about once a second) returns the summaries of busy
clients. Data lines are printed one by one while a client and the server are
quiet; past ``per_client`` lines a second for a client, or ``overall`` lines a
second in all (token buckets), a client's data is folded into one summary
line a second (and stays so while it keeps busy), with exact counts taken
from the server's running totals, which also cover data events the server
skipped under load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, assert_never

from tui_echo.ratelimit import TokenBucket
from tui_echo.server.faults import format_faults
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    ClientLabelled,
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
    FaultChanged,
    DataCorrupted,
    ServerNotice,
    ServerStopped,
)
from tui_echo.net import format_address
from tui_echo.text import describe_addresses, format_size, local_time, plural, preview, printable, rule_names
from tui_echo.times import utc_time
from tui_echo.wire.events import encode_event
from tui_echo.wire.records import to_json

HUMAN_PREVIEW_BYTES = 80


@dataclass(slots=True)
class _ClientLog:
    """What the log knows of one client: its peer and label, and how far its printed lines go."""

    client_id: int
    peer: str
    shown_at: float  # when the client's data was last printed (or it connected)
    lines: TokenBucket
    shown_messages: int = 0  # the client's totals as of that line
    shown_bytes: int = 0
    folded_this_window: bool = False
    busy: bool = False  # folded in the last window: summaries only until it calms down
    latest: DataReceived | None = None
    label: str = ""  # shown next to the id, escaped


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
    def listening(self, event: ServerListening) -> str: ...
    def connected(self, event: ClientConnected, client: _ClientLog, clients_now: int) -> str: ...
    def refused(self, event: ConnectionRefused, clients_now: int) -> str: ...
    def refusals(self, event: RefusalsSummary) -> str: ...
    def data(self, event: DataReceived, client: _ClientLog) -> str: ...
    def sent(self, event: DataSent, client: _ClientLog) -> str: ...
    def broadcast(self, event: DataBroadcast) -> str: ...
    def summary(self, summary: Summary, client: _ClientLog) -> str: ...
    def disconnected(self, event: ClientDisconnected, client: _ClientLog, clients_now: int) -> str: ...
    def labelled(self, event: ClientLabelled, client: _ClientLog) -> str: ...
    def notice(self, event: ServerNotice) -> str: ...
    def fault(self, event: FaultChanged | DataCorrupted, client: _ClientLog) -> str: ...
    def stopped(self, event: ServerStopped, log_lines_lost: int) -> str: ...


def _line(at: float, client_id: int, peer: str, text: str) -> str:
    return f"{local_time(at)}  #{client_id} {peer}  {text}"


def _client_line(at: float, client: _ClientLog, text: str) -> str:
    """``#17 “alice” 127.0.0.1:5000  …``: the label, when it has one, next to the id."""
    if client.label:
        return f"{local_time(at)}  #{client.client_id} “{printable(client.label)}” {client.peer}  {text}"
    return _line(at, client.client_id, client.peer, text)


def _handled(event: DataReceived) -> str:
    """What the server did with a message: ``echoed 6 B``, ``relayed 6 B to 2 clients, 1 dropped``, ``discarded 6 B``.

    Chat and broker count a dropped delivery per receiver that had no room for it. A binary framing's
    bytes outside any frame, and a frame cut at --max-frame, say so."""
    note = event.framing_note
    return f"{_handled_as(event)} ({note})" if note else _handled_as(event)


def _handled_as(event: DataReceived) -> str:
    size = format_size(event.size)
    match event:
        case DataRelayed(recipients=recipients, dropped=dropped):
            return f"relayed {size} to {plural(recipients, 'client')}{f', {dropped} dropped' if dropped else ''}"
        case DataDiscarded():
            return f"discarded {size}"
        case DataAnswered(answered=answered, rules=rules):
            return f"answered by {rule_names(rules)} ({plural(answered, 'message')}) {size}"
        case _:
            return f"echoed {size}"


def _dropped(count: int) -> str:
    """Deliveries that never reached a receiver (chat, broker); nothing when none."""
    return f", {count} dropped" if count else ""


class HumanFormat:
    def listening(self, event: ServerListening) -> str:
        config = event.config
        limits = [
            f"mode {config.mode}",
            f"framing {config.framing}",
            f"max clients {config.max_clients if config.max_clients is not None else 'unlimited'}",
            f"idle timeout {f'{config.idle_timeout:g} s' if config.idle_timeout else 'off'}",
            f"write timeout {f'{config.write_timeout:g} s' if config.write_timeout else 'off'}",
        ]
        if config.max_per_ip is not None:
            limits.append(f"max per IP {config.max_per_ip}")
        if config.accept_rate is not None:
            limits.append(f"accept rate {config.accept_rate:g}/s per IP")
        if config.allow:
            limits.append(f"allow {' '.join(map(str, config.allow))}")
        if config.deny:
            limits.append(f"deny {' '.join(map(str, config.deny))}")
        if config.rules:
            limits.append(plural(len(config.rules), "reply rule"))
        if config.proxy_protocol:
            trusted = " ".join(map(str, config.proxy_from)) or "anyone"
            limits.insert(0, f"PROXY protocol from {trusted}, header timeout {config.proxy_header_timeout:g} s")
        if config.fault is not None:
            seed = "" if config.fault_seed is None else f" (seed {config.fault_seed})"
            limits.append(f"fault {format_faults(config.fault)}{seed}")
        if config.tls is not None:
            limits.insert(0, f"TLS, handshake timeout {config.tls.handshake_timeout:g} s")
        control = f", control socket {event.control}" if event.control else ""
        listening = f"listening on {describe_addresses(event.addresses)} ({', '.join(limits)})"
        line = f"{local_time(event.at)}  {listening}{control}"
        if config.tls is None:
            return line
        kind = (
            "self-signed certificate (made at start, key kept in memory)" if config.tls.self_signed else "certificate"
        )
        return f"{line}\n{local_time(event.at)}  TLS {kind} SHA-256 fingerprint {config.tls.fingerprint}"

    def connected(self, event: ClientConnected, client: _ClientLog, clients_now: int) -> str:
        tls = "" if event.tls_version is None else f" over {event.tls_version} {event.tls_cipher}"
        via = "" if event.proxy is None else f" via proxy {format_address(event.proxy)}"
        return _client_line(event.at, client, f"connected{via}{tls} ({clients_now} now)")

    def refused(self, event: ConnectionRefused, clients_now: int) -> str:
        return _line(
            event.at, event.client_id, format_address(event.peer), f"refused: {event.reason} ({clients_now} connected)"
        )

    def refusals(self, event: RefusalsSummary) -> str:
        return (
            f"{local_time(event.at)}  refused {plural(event.total, 'connection')} in {event.seconds:.1f} s "
            f"(too many to log one by one): {event.describe()}"
        )

    def data(self, event: DataReceived, client: _ClientLog) -> str:
        reply = ""
        if isinstance(event, DataAnswered):
            reply = f" · reply {format_size(event.reply_size)}: {preview(event.reply, HUMAN_PREVIEW_BYTES)}"
        return _client_line(
            event.at,
            client,
            f"msg {event.messages_in}  {_handled(event)}: {preview(event.data, HUMAN_PREVIEW_BYTES)}{reply}",
        )

    def sent(self, event: DataSent, client: _ClientLog) -> str:
        return _client_line(
            event.at,
            client,
            f"operator sent {format_size(event.size)}: {preview(event.data, HUMAN_PREVIEW_BYTES)}",
        )

    def fault(self, event: FaultChanged | DataCorrupted, client: _ClientLog) -> str:
        return _client_line(event.at, client, event.describe())

    def broadcast(self, event: DataBroadcast) -> str:
        return (
            f"{local_time(event.at)}  operator broadcast {format_size(event.size)} to "
            f"{plural(event.recipients, 'client')}: {preview(event.data, HUMAN_PREVIEW_BYTES)}"
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
        return _client_line(
            event.at,
            client,
            f"disconnected: {event.why} "
            f"({plural(event.messages_in, 'msg')}, {format_size(event.bytes_in)} in, "
            f"{format_size(event.bytes_out)} out{_dropped(event.dropped_out)}, "
            f"{event.at - event.connected_at:.1f} s; {clients_now} now)",
        )

    def labelled(self, event: ClientLabelled, client: _ClientLog) -> str:
        by = "operator" if event.rule is None else f"rule {event.rule}"
        if not event.label:
            return _client_line(event.at, client, f"label taken away (by the {by})")
        return _client_line(event.at, client, f"labelled by the {by}")

    def notice(self, event: ServerNotice) -> str:
        return f"{local_time(event.at)}  notice: {event.message}"

    def stopped(self, event: ServerStopped, log_lines_lost: int) -> str:
        totals = event.totals
        extra = f", {totals.events_skipped} data events not logged (busy)" if totals.events_skipped else ""
        if totals.tls_handshakes_failed:
            extra += f", {plural(totals.tls_handshakes_failed, 'TLS handshake')} failed"
        if totals.rule_hits:
            extra += f", rule hits {' '.join(map(str, totals.rule_hits))}"
        if log_lines_lost:
            extra += f", {plural(log_lines_lost, 'log line')} lost"
        reasons = ", ".join(f"{reason} {count}" for reason, count in totals.refused_by_reason.items())
        refused = f"{totals.refused_total} refused ({reasons})" if reasons else f"{totals.refused_total} refused"
        return (
            f"{local_time(event.at)}  server stopped: {plural(totals.clients_total, 'client')}, "
            f"{refused}, {plural(totals.messages_in, 'msg')}, {format_size(totals.bytes_in)} in, "
            f"{format_size(totals.bytes_out)} out{_dropped(totals.dropped_out)}{extra}"
        )


class JsonFormat:
    """JSON Lines in the one event vocabulary (``tui_echo.wire``), plus the log's own ``data_summary``."""

    def _line(self, event: ServerEvent, peer: str = "", clients_now: int = 0) -> str:
        return to_json(encode_event(event, peer=peer, clients_now=clients_now))

    def listening(self, event: ServerListening) -> str:
        return self._line(event)

    def connected(self, event: ClientConnected, client: _ClientLog, clients_now: int) -> str:
        return self._line(event, client.peer, clients_now)

    def refused(self, event: ConnectionRefused, clients_now: int) -> str:
        return self._line(event, clients_now=clients_now)

    def refusals(self, event: RefusalsSummary) -> str:
        return self._line(event)

    def data(self, event: DataReceived, client: _ClientLog) -> str:
        return self._line(event, client.peer)

    def sent(self, event: DataSent, client: _ClientLog) -> str:
        return self._line(event, client.peer)

    def broadcast(self, event: DataBroadcast) -> str:
        return self._line(event)

    def fault(self, event: FaultChanged | DataCorrupted, client: _ClientLog) -> str:
        return self._line(event, client.peer)

    def summary(self, summary: Summary, client: _ClientLog) -> str:
        return to_json(
            {
                "event": "data_summary",
                "time": utc_time(summary.at),
                "client": client.client_id,
                "peer": client.peer,
                "messages": summary.messages,
                "bytes": summary.bytes_in,
                "seconds": round(summary.seconds, 3),
                "messages_in": summary.messages_total,
                "bytes_in": summary.bytes_total,
                "note": "busy client: data events coalesced",
            }
        )

    def disconnected(self, event: ClientDisconnected, client: _ClientLog, clients_now: int) -> str:
        return self._line(event, client.peer, clients_now)

    def labelled(self, event: ClientLabelled, client: _ClientLog) -> str:
        return self._line(event, client.peer)

    def notice(self, event: ServerNotice) -> str:
        return self._line(event)

    def stopped(self, event: ServerStopped, log_lines_lost: int) -> str:
        return to_json({**encode_event(event), "log_lines_lost": log_lines_lost})


def _none_lost() -> int:
    return 0


@dataclass(slots=True)
class EventLog:
    format: LogFormat
    # Log lines that never made it out so far (the writer counts them); the stopped line reports it.
    lines_lost: Callable[[], int] = _none_lost
    per_client: int = 5  # data lines a second for one client before it is summarised
    overall: int = 20  # data lines a second for the whole server before busy clients are summarised
    window_seconds: float = 1.0
    _clients: dict[int, _ClientLog] = field(default_factory=dict)
    window_start: float = field(default_factory=time.time)
    _overall: TokenBucket | None = None

    def handle(self, event: ServerEvent) -> list[str]:
        match event:
            case DataReceived():
                return self._data(event)
            case DataSent():
                return [self.format.sent(event, self._client(event.client_id, event.at))]
            case DataBroadcast():
                return [self.format.broadcast(event)]
            case ClientConnected():
                client = self._new_client(event.client_id, format_address(event.peer), event.at)
                self._clients[event.client_id] = client
                return [self.format.connected(event, client, len(self._clients))]
            case ConnectionRefused():
                return [self.format.refused(event, len(self._clients))]
            case RefusalsSummary():
                return [self.format.refusals(event)]
            case ClientDisconnected():
                known = self._clients.pop(event.client_id, None)
                client = known or self._new_client(event.client_id, format_address(event.peer), event.at)
                lines = self._catch_up(client, event.at, event.messages_in, event.bytes_in)
                lines.append(self.format.disconnected(event, client, len(self._clients)))
                return lines
            case ServerListening():
                return [self.format.listening(event)]
            case FaultChanged() | DataCorrupted():
                return [self.format.fault(event, self._client(event.client_id, event.at))]
            case ClientLabelled():
                client = self._client(event.client_id, event.at)
                client.label = event.label
                return [self.format.labelled(event, client)]
            case ServerNotice():
                return [self.format.notice(event)]
            case ServerStopped():
                return [self.format.stopped(event, self.lines_lost())]
            case _:
                assert_never(event)

    def known_client(
        self, client_id: int, peer: str, at: float, messages_in: int, bytes_in: int, label: str = ""
    ) -> None:
        """A client that connected before this log started (``tui-echo events`` on a running server):
        its later lines get its peer and label, and its summaries count from these totals."""
        client = self._new_client(client_id, peer, at)
        client.label = label
        self._mark_shown(client, at, messages_in, bytes_in)
        self._clients[client_id] = client

    def tick(self, now: float) -> list[str]:
        """Summaries of what busy clients sent since their last line; call about once a second."""
        if now - self.window_start < self.window_seconds:
            return []
        self.window_start = now
        lines = []
        for client in self._clients.values():
            client.busy = client.folded_this_window
            client.folded_this_window = False
            if client.latest is not None:
                lines += self._catch_up(client, now, client.latest.messages_in, client.latest.bytes_in)
        return lines

    def _new_client(self, client_id: int, peer: str, now: float) -> _ClientLog:
        return _ClientLog(client_id, peer, now, TokenBucket(self.per_client, self.per_client, now))

    def _client(self, client_id: int, now: float) -> _ClientLog:
        client = self._clients.get(client_id)
        if client is None:  # a client that connected before this log started
            client = self._clients[client_id] = self._new_client(client_id, "?", now)
        return client

    def _data(self, event: DataReceived) -> list[str]:
        client = self._client(event.client_id, event.at)
        client.latest = event
        if self._overall is None:
            self._overall = TokenBucket(self.overall, self.overall, event.at)
        # Once folded, a client stays folded until the next tick: a line now and then amid summaries reads worse.
        folded = client.busy or client.folded_this_window
        if folded or not client.lines.take(event.at) or not self._overall.take(event.at):
            client.folded_this_window = True
            return []  # folded into the client's next summary
        # Data before this event that was folded or skipped gets its summary first.
        lines = self._catch_up(client, event.at, event.messages_in - event.messages, event.bytes_in - event.size)
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
