"""What the monitor's feed shows: server events turned into feed lines, at a rate a person can read.

Pure logic, no trio, no Textual. A client may add ``LINES_PER_CLIENT_SECOND``
data lines a second (a token bucket: bursts of ``LINES_PER_CLIENT_BURST`` show whole), a batch
at most ``lines_per_batch``; the rest are counted, and once a second the
busiest clients get a "busy" line saying how many of their messages were
left out (from the events' running totals: the server sends a busy client's
events only as a sample, and drops some when the monitor falls behind).
Connect, disconnect and server lines are always shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum, unique

from typing import assert_never

from tui_echo.ratelimit import TokenBucket
from tui_echo.server.config import Mode
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
from tui_echo.text import describe_addresses, escape_bytes, format_duration, format_size, plural, printable, rule_names

TEXT_PREVIEW_BYTES = 200  # of a chunk, shown in the text view
HEX_KEEP_BYTES = 256  # of a chunk, kept for the hex view
LINES_PER_CLIENT_SECOND = 10  # so that one busy client cannot drown the others' lines...
LINES_PER_CLIENT_BURST = 10  # ...while a short burst (a paste) still shows whole
BUSY_NOTES_PER_SECOND = 5  # "msgs not shown" notes per second, for the busiest clients


def _preview(data: bytes, size: int) -> str:
    """The inert text of a chunk's first bytes, with what is left out: ``hello … +3.0 KiB``."""
    text, shown = escape_bytes(data, TEXT_PREVIEW_BYTES)
    return f"{text} … +{format_size(size - shown)}" if shown < size else text


@unique  # a mark is never reused for another meaning
class Direction(StrEnum):
    """The mark at the start of a feed line, and what it means.

    The one definition of the marks: the help screen shows these meanings, and a
    test checks README's mark table against them. A new kind of line gets a new mark.
    """

    meaning: str

    def __new__(cls, mark: str, meaning: str) -> Direction:
        member = str.__new__(cls, mark)
        member._value_ = mark
        member.meaning = meaning
        return member

    ECHOED = "⇄", "received from the client and echoed back: the echo is sent in full before the line shows"
    RELAYED = (
        "⇶",
        (
            "chat, broker: received from the client and passed on to the others (never back to it); "
            "after the mark, to whom: all, or how many clients"
        ),
    )
    DISCARDED = "←", "discard: received from the client and counted; nothing is sent back"
    ANSWERED = (
        "↩",
        (
            "received from the client and answered by a reply rule: after the mark, which rule; "
            "after the request, the reply (a line a rule did not match is echoed)"
        ),
    )
    SENT = "→", "sent by you, from the send box; a broadcast is one line, after the mark: all (how many clients)"
    SYSTEM = "•", "system: connect, disconnect with its reason, refused connection, busy note, server notice"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedEntry:
    at: float
    client_id: int | None
    direction: Direction
    text: str  # inert: escaped client bytes, or a system message
    data: bytes = b""  # the first HEX_KEEP_BYTES of client bytes, for the hex view
    size: int = 0  # the chunk's full size
    to: str = ""  # a relayed line's receivers ("all", "5 clients"), a broadcast's, or the rules that answered
    reply_text: str = ""  # a line a rule answered: the reply, inert, as ``text``
    reply: bytes = b""  # and its first HEX_KEEP_BYTES, for the hex view
    reply_size: int = 0
    label: str = ""  # the client's label when the line came (the feed shows it next to the id)

    @property
    def everyone(self) -> bool:
        """A broadcast: a line of every client's, though it names none."""
        return self.client_id is None and self.direction is Direction.SENT

    @classmethod
    def of_bytes(
        cls, at: float, client_id: int | None, direction: Direction, data: bytes, size: int, to: str = ""
    ) -> FeedEntry:
        """A data line from the first bytes of a chunk (``data``) and its full length (``size``)."""
        return cls(
            at=at,
            client_id=client_id,
            direction=direction,
            text=_preview(data, size),
            data=data[:HEX_KEEP_BYTES],
            size=size,
            to=to,
        )

    @classmethod
    def answered(cls, event: DataAnswered) -> FeedEntry:
        """A line a rule answered: the request, which rules, and the reply."""
        to = rule_names(event.rules)
        if event.answered < event.messages:  # line framing: the chunk's other lines were echoed
            to += f" ({event.answered} of {event.messages} lines)"
        return cls(
            at=event.at,
            client_id=event.client_id,
            direction=Direction.ANSWERED,
            text=_preview(event.data, event.size),
            data=event.data[:HEX_KEEP_BYTES],
            size=event.size,
            to=to,
            reply_text=_preview(event.reply, event.reply_size),
            reply=event.reply[:HEX_KEEP_BYTES],
            reply_size=event.reply_size,
        )

    @classmethod
    def system(cls, at: float, client_id: int | None, text: str) -> FeedEntry:
        return cls(at=at, client_id=client_id, direction=Direction.SYSTEM, text=text)


def _goodbye(event: ClientDisconnected) -> str:
    dropped = f", {event.dropped_out} dropped to it" if event.dropped_out else ""
    return (
        f"disconnected: {event.why} · {plural(event.messages_in, 'msg')}, {format_size(event.bytes_in)} in{dropped}, "
        f"after {format_duration(event.at - event.connected_at)}"
    )


def _direction(event: DataReceived) -> tuple[Direction, str]:
    """The mark of a received message's line, and to whom it went: ``⇶ all`` for a chat line, ``⇶ 5 clients``."""
    match event:
        case DataRelayed(mode=mode, recipients=recipients, dropped=dropped):
            reached = ("all" if recipients else "nobody") if mode is Mode.CHAT else plural(recipients, "client")
            return Direction.RELAYED, f"{reached}, {dropped} dropped" if dropped else reached
        case DataDiscarded():
            return Direction.DISCARDED, ""
        case _:
            return Direction.ECHOED, ""


def _data_entry(event: DataReceived | DataSent) -> FeedEntry:
    if isinstance(event, DataAnswered):
        return FeedEntry.answered(event)
    direction, to = _direction(event) if isinstance(event, DataReceived) else (Direction.SENT, "")
    if isinstance(event, DataReceived) and (note := event.framing_note):  # a binary framing's piece, not a frame
        to = f"{to}, {note}" if to else note
    return FeedEntry.of_bytes(event.at, event.client_id, direction, event.data, event.size, to)


def _busy(unshown: int) -> str:
    return f"busy: {plural(unshown, 'msg')} not shown in the last second"


class FeedIntake:
    def __init__(self, lines_per_batch: int) -> None:
        self._lines_per_batch = lines_per_batch
        self._allowance: dict[int, TokenBucket] = {}  # client id -> the data lines it may show
        self._unshown: dict[int, int] = {}  # client id -> messages left out since the last notes
        # client id -> its messages_in accounted for (shown or left out): the server samples a busy client's
        # data events, so what was left out comes from the running totals, not from counting events
        self._accounted: dict[int, int] = {}
        self._notes_due = 0.0
        self.skipped = 0  # messages left out, in all (an operator's send counts one)

    def entries(self, events: Iterable[ServerEvent], now: float) -> list[FeedEntry]:
        """The feed lines for one batch of events, oldest first."""
        entries: list[FeedEntry] = []
        data_lines = 0
        for event in events:
            match event:
                case DataSent(client_id=client_id):
                    if data_lines < self._lines_per_batch and self._take_line(client_id, now):
                        entries.append(_data_entry(event))
                        data_lines += 1
                    else:
                        self._left_out(client_id, 1)
                case DataReceived(client_id=client_id):
                    shown = data_lines < self._lines_per_batch and self._take_line(client_id, now)
                    before = event.messages_in - event.messages
                    accounted = self._accounted.get(client_id, before)
                    self._accounted[client_id] = event.messages_in
                    if shown:
                        entries.append(_data_entry(event))
                        data_lines += 1
                        self._left_out(client_id, before - accounted)  # those the server sent no event for
                    else:
                        self._left_out(client_id, event.messages_in - accounted)
                case DataBroadcast(data=data, size=size, at=at, recipients=recipients):
                    # One line for every client: the operator's, never skipped.
                    to = f"all ({plural(recipients, 'client')})"
                    entries.append(FeedEntry.of_bytes(at, None, Direction.SENT, data, size, to))
                case ClientConnected(client_id=client_id, peer=peer, at=at, tls_version=tls_version):
                    tls = "" if tls_version is None else f" over {tls_version} {event.tls_cipher}"
                    via = "" if event.proxy is None else f" via proxy {format_address(event.proxy)}"
                    entries.append(FeedEntry.system(at, client_id, f"connected from {format_address(peer)}{via}{tls}"))
                case ConnectionRefused(peer=peer, at=at, reason=reason):
                    entries.append(FeedEntry.system(at, None, f"refused: {reason}: {format_address(peer)}"))
                case RefusalsSummary(at=at, seconds=seconds):
                    text = f"refused {plural(event.total, 'connection')} in {seconds:.1f} s: {event.describe()}"
                    entries.append(FeedEntry.system(at, None, text))
                case ClientDisconnected():
                    self._allowance.pop(event.client_id, None)
                    if event.client_id in self._accounted:
                        self._left_out(event.client_id, event.messages_in - self._accounted.pop(event.client_id))
                    unshown = self._unshown.pop(event.client_id, 0)
                    if unshown:  # now or never: a note after the goodbye would read as if it came back
                        entries.append(FeedEntry.system(event.at, event.client_id, _busy(unshown)))
                    entries.append(FeedEntry.system(event.at, event.client_id, _goodbye(event)))
                case FaultChanged(client_id=client_id, at=at) | DataCorrupted(client_id=client_id, at=at):
                    entries.append(FeedEntry.system(at, client_id, event.describe()))
                case ClientLabelled(client_id=client_id, label=label, at=at, rule=rule):
                    by = "" if rule is None else f" by rule {rule}"
                    text = f"labelled “{printable(label)}”{by}" if label else f"label taken away{by}"
                    entries.append(FeedEntry.system(at, client_id, text))
                case ServerNotice(message=message, at=at):
                    entries.append(FeedEntry.system(at, None, message))
                case ServerListening(addresses=addresses, at=at, config=config):
                    tls = "" if config.tls is None else f" with TLS, certificate SHA-256 {config.tls.fingerprint}"
                    entries.append(FeedEntry.system(at, None, f"listening on {describe_addresses(addresses)}{tls}"))
                case ServerStopped(at=at):
                    entries.append(FeedEntry.system(at, None, "server stopped"))
                case _:
                    assert_never(event)
        return entries + self._busy_notes(now)

    def _left_out(self, client_id: int, messages: int) -> None:
        if messages > 0:
            self.skipped += messages
            self._unshown[client_id] = self._unshown.get(client_id, 0) + messages

    def _take_line(self, client_id: int, now: float) -> bool:
        """Whether the client may add one more data line now."""
        bucket = self._allowance.get(client_id)
        if bucket is None:
            bucket = self._allowance[client_id] = TokenBucket(LINES_PER_CLIENT_SECOND, LINES_PER_CLIENT_BURST, now)
        return bucket.take(now)

    def _busy_notes(self, now: float) -> list[FeedEntry]:
        """Once a second: which clients had lines left out, busiest first."""
        if now < self._notes_due:
            return []
        busiest = sorted(self._unshown.items(), key=lambda item: -item[1])[:BUSY_NOTES_PER_SECOND]
        self._unshown.clear()
        self._notes_due = now + 1.0
        return [FeedEntry.system(now, client_id, _busy(count)) for client_id, count in busiest]
