"""``tui-echo load --replay FILE --client N HOST:PORT``: play one recorded client against any server.

Each recorded chunk the client sent is a message: it is sent (at the recorded
pace, or as fast as the answers come with ``--fast``), and what the server
answered to it in the recording (every byte written to the client before its
next message) is awaited and compared. The first difference ends the run:
the message's number, the byte offset in its answer, both bytes in hex; exit
1. A server that answers nothing for ``--timeout`` seconds differs too.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tui_echo.arguments import PROG, OneLineParser, seconds, whole_number
from tui_echo.net import Peer, describe_error, format_address, parse_address
from tui_echo.recording.reader import ClientStream, RecordingError, load

DEFAULT_ANSWER_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Message:
    number: int  # from 1; 0 is what the server said before the client's first message (a greeting)
    at: float  # seconds after the client's first recorded byte
    data: bytes
    answer: bytes


def messages(stream: ClientStream) -> list[Message]:
    """The client's recorded messages, each with the bytes the server wrote to it before the next."""
    start = stream.moved[0][0] if stream.moved else stream.connected_at
    found = [Message(0, 0.0, b"", b"")]
    for at, incoming, data in stream.moved:
        last = found[-1]
        if incoming:
            found.append(Message(last.number + 1, max(at - start, 0.0), data, b""))
        else:
            found[-1] = Message(last.number, last.at, last.data, last.answer + data)
    return found if found[0].answer else found[1:]


@dataclass(frozen=True, slots=True)
class Difference:
    message: int
    offset: int
    expected: int | None  # None: the recording has no byte there (the server said more)
    got: int | None  # None: nothing came within the timeout, or the connection ended

    def describe(self) -> str:
        def hexed(byte: int | None, none: str) -> str:
            return none if byte is None else f"0x{byte:02x}"

        return (
            f"message {self.message} differs at byte {self.offset} of its answer: expected "
            f"{hexed(self.expected, 'nothing more')}, got {hexed(self.got, 'nothing')}"
        )


def play(target: Peer, recorded: list[Message], *, speed: float | None, timeout: float) -> Difference | None:
    """Play ``recorded`` against ``target``; the first difference, or None if every answer matched."""
    with socket.create_connection(target, timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        began = time.monotonic()
        for message in recorded:
            if speed is not None:
                time.sleep(max(began + message.at / speed - time.monotonic(), 0.0))
            if message.data:
                sock.sendall(message.data)
            got = bytearray()
            while len(got) < len(message.answer):
                try:
                    chunk = sock.recv(len(message.answer) - len(got))
                except TimeoutError:
                    chunk = b""
                if not chunk:
                    break
                got += chunk
            difference = _compare(message, bytes(got))
            if difference is not None:
                return difference
        sock.settimeout(min(timeout, 0.2))  # anything more than the recording had?
        try:
            extra = sock.recv(1)
        except (TimeoutError, ConnectionResetError):
            extra = b""
        if extra:
            last = recorded[-1] if recorded else Message(0, 0.0, b"", b"")
            return Difference(last.number, len(last.answer), None, extra[0])
    return None


def _compare(message: Message, got: bytes) -> Difference | None:
    expected = message.answer
    for offset, (want, have) in enumerate(zip(expected, got, strict=False)):
        if want != have:
            return Difference(message.number, offset, want, have)
    if len(got) < len(expected):
        return Difference(message.number, len(got), expected[len(got)], None)
    return None


def _target(text: str) -> Peer:
    try:
        return ("127.0.0.1", int(text)) if text.isdigit() else parse_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text!r}") from None


def replay_load_main(arguments: Sequence[str]) -> int:
    parser = OneLineParser(
        prog=f"{PROG} load --replay",
        description="Play one recorded client's messages against any server and compare every answer with the "
        "recorded one; the first difference is reported (message, byte offset, both bytes in hex), exit 1.",
    )
    parser.add_argument("--replay", required=True, metavar="FILE", action="append", help="The recording (repeatable).")
    parser.add_argument("--client", required=True, type=whole_number(1, None), metavar="N", help="The client's id.")
    parser.add_argument("target", type=_target, metavar="[HOST:]PORT", help="The server to play it against.")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--fast", action="store_true", help="Send each message as soon as the last was answered.")
    pace.add_argument("--speed", type=float, default=1.0, metavar="X", help="The recorded pace times X (default 1).")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_ANSWER_TIMEOUT,
        metavar="SECONDS",
        help=f"How long an answer may take (default {DEFAULT_ANSWER_TIMEOUT:g}).",
    )
    args = parser.parse_args(arguments)
    if args.speed <= 0:
        parser.error("--speed: expected a number above 0")
    try:
        stream = load(args.replay).client(args.client)
    except RecordingError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    except (KeyError, ValueError) as exc:
        message = exc if isinstance(exc, ValueError) else f"no client #{args.client} in the recording"
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    recorded = messages(stream)
    try:
        difference = play(args.target, recorded, speed=None if args.fast else args.speed, timeout=args.timeout)
    except OSError as exc:
        parser.exit(2, f"{parser.prog}: error: {format_address(args.target)}: {describe_error(exc)}\n")
    if difference is not None:
        print(f"{PROG} load --replay: #{args.client}: {difference.describe()}", file=sys.stderr)
        return 1
    answered = sum(len(m.answer) for m in recorded)
    print(f"#{args.client}: {len(recorded)} messages, {answered} bytes answered, every answer as recorded")
    return 0
