"""The pieces of chat and broker mode that need no sockets: chat lines, queues, what the chat says."""

from __future__ import annotations

import json

import pytest

from tui_echo.control import protocol
from tui_echo.wire.events import decode_event, encode_event
from tui_echo.headless.log import EventLog, HumanFormat
from tui_echo.server.config import Mode, ServerConfig
from tui_echo.server.events import ClientConnected, DataDiscarded, DataRelayed, ServerListening

from tui_echo.server.clients import ClientState
from tui_echo.server.relay import CHAT_LINE_BYTES, ChatLines, Outbound, operator_says, said


def test_chat_lines_are_cut_at_newlines_or_at_the_bound_and_nothing_is_lost() -> None:
    lines = ChatLines()
    assert lines.lines(b"a\nb") == [b"a\n"]
    assert lines.lines(b"c\n\n") == [b"bc\n", b"\n"]
    big = b"y" * (2 * CHAT_LINE_BYTES + 5)
    assert lines.lines(big) == [b"y" * CHAT_LINE_BYTES] * 2
    assert lines.lines(b"\n") == [b"yyyyy\n"]
    exact = b"z" * CHAT_LINE_BYTES + b"\n"  # a 64 KiB line with its newline stays one line
    assert lines.lines(exact) == [exact]
    assert lines.rest() == b""


def test_a_full_queue_drops_whole_deliveries_and_counts_them() -> None:
    state = ClientState(client_id=1, peer=("127.0.0.1", 1), connected_at=0.0, last_activity=0.0)
    queue = Outbound(state, limit=10)
    assert queue.offer(b"123456")
    assert not queue.offer(b"12345")  # 11 bytes would not fit: none of it goes
    assert queue.offer(b"1234")  # exactly full
    assert (queue.queued_bytes, state.dropped_out) == (10, 1)
    queue.written(1)
    assert queue.offer(b"abcdef")
    queue.abandon()  # it left with two deliveries unsent: they never reached it either
    assert (queue.queued_bytes, state.dropped_out) == (0, 3)


@pytest.mark.trio
async def test_deliveries_are_written_in_whole_batches_of_up_to_64_KiB() -> None:
    state = ClientState(client_id=1, peer=("127.0.0.1", 1), connected_at=0.0, last_activity=0.0)
    queue = Outbound(state, limit=1 << 20)
    for _ in range(3):
        assert queue.offer(b"a" * 30_000)
    assert await queue.batch() == (b"a" * 60_000, 2)  # a third would pass 64 KiB
    queue.written(2)
    assert queue.offer(b"b" * 100_000)
    assert await queue.batch() == (b"a" * 30_000, 1)
    queue.written(1)
    assert await queue.batch() == (b"b" * 100_000, 1)  # a big one goes alone, whole


def test_what_the_chat_says() -> None:
    assert said(3, b"hi\n") == b"<#3> hi\n"
    assert said(3, b"cut") == b"<#3> cut\n"
    assert operator_says(b"hello", private=False) == b"<operator> hello\n"
    assert operator_says(b"psst\n", private=True) == b"<operator> (private) psst\n"


def test_the_log_the_json_and_the_control_protocol_say_what_each_mode_did() -> None:
    common = dict(client_id=3, data=b"hi\n", size=3, at=1_764_050_400.0, messages=1, messages_in=1, bytes_in=3)
    relayed = DataRelayed(**common, bytes_out=0, mode=Mode.CHAT, recipients=2, dropped=1)
    discarded = DataDiscarded(**common, bytes_out=0)
    for event in (relayed, discarded):
        message = json.loads(json.dumps(protocol.event_message(event, peer="127.0.0.1:5", clients_now=3)))
        assert decode_event(message) == event
    record = encode_event(relayed, peer="x")
    assert (record["mode"], record["recipients"], record["dropped"]) == ("chat", 2, 1)
    assert encode_event(discarded, peer="x")["mode"] == "discard"
    log = EventLog(HumanFormat())
    log.handle(ClientConnected(client_id=3, peer=("127.0.0.1", 5), at=common["at"]))
    assert log.handle(relayed)[0].endswith("msg 1  relayed 3 B to 2 clients, 1 dropped: hi\\n")
    assert log.handle(ServerListening(addresses=(("127.0.0.1", 1),), at=0.0, config=ServerConfig(mode=Mode.BROKER)))[
        0
    ].count("mode broker")
