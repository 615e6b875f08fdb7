"""Framing (--framing, --max-frame): the framer alone (hypothesis) and the server over real sockets."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_echo.server.config import Framing, Mode
from tui_echo.server.events import DataAnswered, DataReceived, DataRelayed
from tui_echo.server.framing import LENGTH_HEADERS, Framer, Kind, Piece
from tui_echo.server.rules import parse_rule_option

from .helpers import connect, receive_exactly, running_server
from .process import run_cli

FRAMED = [framing for framing in Framing if framing is not Framing.CHUNK]
BINARY = [framing for framing in Framing if framing.binary]


def frame(framing: Framing, payload: bytes) -> bytes:
    """``payload`` as one frame of ``framing`` (stx-etx and line: a payload without its end byte)."""
    if framing is Framing.LINE:
        return payload.replace(b"\n", b"") + b"\n"
    if framing is Framing.STX_ETX:
        return b"\x02" + payload.replace(b"\x03", b"") + b"\x03"
    header = LENGTH_HEADERS[framing]
    return header.pack(min(len(payload), 255) if framing is Framing.LEN_U8 else len(payload)) + payload[:255]


def fed(framing: Framing, chunks: list[bytes], max_frame: int = 64 * 1024) -> list[Piece]:
    framer = Framer(framing, max_frame)
    pieces = [piece for chunk in chunks for piece in framer.feed(chunk)]
    rest = framer.rest()
    return pieces + ([rest] if rest else [])


payloads = st.lists(st.binary(max_size=40), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(framing=st.sampled_from(FRAMED), payloads=payloads)
def test_frames_split_at_every_byte_position_come_out_the_same(framing: Framing, payloads: list[bytes]) -> None:
    frames = [frame(framing, payload) for payload in payloads]
    stream = b"".join(frames)
    whole = fed(framing, [stream])
    assert whole == [Piece(one, Kind.FRAME) for one in frames]
    for at in range(len(stream) + 1):
        assert fed(framing, [stream[:at], stream[at:]]) == whole, at


@settings(max_examples=60, deadline=None)
@given(framing=st.sampled_from(FRAMED), payloads=payloads, data=st.data())
def test_any_chunking_gives_the_same_pieces_also_past_max_frame(framing: Framing, payloads: list[bytes], data) -> None:
    stream = b"".join(frame(framing, payload) for payload in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for limit in (1, 7, 64 * 1024):
        pieces = fed(framing, chunks, limit)
        assert pieces == fed(framing, [stream], limit)
        assert b"".join(piece.data for piece in pieces) == stream  # nothing lost, nothing made up
        assert all(len(piece.data) <= limit for piece in pieces)


def test_noise_before_an_stx_is_its_own_piece_and_a_long_frame_is_cut() -> None:
    assert fed(Framing.STX_ETX, [b"xx\x02A", b"B\x03\x02123456789\x03yy"], 8) == [
        Piece(b"xx", Kind.NOISE),
        Piece(b"\x02AB\x03", Kind.FRAME),
        Piece(b"\x021234567", Kind.CUT),
        Piece(b"89\x03", Kind.CUT),
        Piece(b"yy", Kind.NOISE),
    ]
    assert fed(Framing.LEN_U16BE, [b"\x00", b"\x03ab", b"c\x00"]) == [
        Piece(b"\x00\x03abc", Kind.FRAME),
        Piece(b"\x00", Kind.CUT),  # an unfinished header at the end is said as it is
    ]


@pytest.mark.trio
@pytest.mark.parametrize("framing", BINARY)
async def test_a_rule_answers_a_whole_frame_whatever_the_reads_and_counts_one_message_each(framing: Framing) -> None:
    """The issue's case: a frame written in two parts is answered by a rule written for the whole frame."""
    ping, other = frame(framing, b"PING"), frame(framing, b"data")
    rule = parse_rule_option(r"PING => PONG", 1, 1)
    stream = ping + other
    async with running_server(framing=framing, rules=(rule,)) as run:
        for at in range(1, len(stream)):  # split at every byte position, one client each
            client = await connect(run.port)
            await client.send_all(stream[:at])
            await trio.sleep(0.01)  # most often two reads; either way the same frames
            await client.send_all(stream[at:])
            assert await receive_exactly(client, 4 + len(other)) == b"PONG" + other
            (state,) = [s for s in run.server.clients() if s.bytes_out == 4 + len(other)]
            assert state.messages_in == 2
            await client.aclose()
            await run.recorder.wait_for(lambda: not list(run.server.clients()))
        answered = run.recorder.of(DataAnswered)
        assert [event.data for event in answered] == [ping] * (len(stream) - 1)


@pytest.mark.trio
async def test_echo_with_stx_etx_shows_noise_and_cut_frames_and_echoes_every_byte() -> None:
    async with running_server(framing=Framing.STX_ETX, max_frame=8) as run:
        client = await connect(run.port)
        sent = b"junk\x02AB\x03\x02123456789\x03"
        await client.send_all(sent)
        assert await receive_exactly(client, len(sent)) == sent
        await run.recorder.wait_for(lambda: len(run.recorder.of(DataReceived)) == 4)
        events = run.recorder.of(DataReceived)
        assert [(e.data, e.messages, e.noise, e.cut) for e in events] == [
            (b"junk", 0, True, False),
            (b"\x02AB\x03", 1, False, False),
            (b"\x021234567", 1, False, True),
            (b"89\x03", 1, False, True),
        ]
        assert events[-1].messages_in == 3
        assert [e.bytes_in for e in events] == [4, 8, 16, 19]  # the client's bytes up to the end of each piece


@pytest.mark.trio
async def test_broker_relays_whole_frames_and_never_noise() -> None:
    async with running_server(mode=Mode.BROKER, framing=Framing.LEN_U8) as run:
        one, two = await connect(run.port), await connect(run.port)
        await run.recorder.wait_for(lambda: len(list(run.server.clients())) == 2)
        await one.send_all(b"\x03ab")
        await trio.sleep(0.05)
        await one.send_all(b"c\x01z")
        assert await receive_exactly(two, 6) == b"\x03abc\x01z"
        await run.recorder.wait_for(lambda: len(run.recorder.of(DataRelayed)) == 2)
        assert [e.data for e in run.recorder.of(DataRelayed)] == [b"\x03abc", b"\x01z"]


@pytest.mark.parametrize("framing", ["stx-etx", "len:u16be"])
def test_chat_with_a_binary_framing_is_one_clear_line(framing: str) -> None:
    done = run_cli(["--headless", "--port", "0", "--mode", "chat", "--framing", framing])
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"tui-echo: error: --mode chat is line-based: --framing {framing} is for echo, broker and discard "
        "(see tui-echo --help)"
    ]
