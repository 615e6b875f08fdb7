"""Reply rules in the server, against real sockets: replies instead of the echo, counts, notices, TLS."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest
import trio

from tui_echo.server.config import Framing
from tui_echo.server.events import EVENT_DATA_BYTES, DataAnswered, DataReceived, ServerNotice, ServerStopped
from tui_echo.server.rules import RULE_LINE_BYTES, RULE_PREFIX_BYTES, Rule, compile_rule, parse_rule_option

from .helpers import connect, receive_exactly, receive_until_eof, running_server
from .tls_helpers import Certificates, connect_tls, issue_certificates

pytestmark = pytest.mark.trio


def rules(*texts: str) -> tuple[Rule, ...]:
    return tuple(parse_rule_option(text, number, number) for number, text in enumerate(texts, 1))


def notices(server_run) -> list[str]:
    return [event.message for event in server_run.recorder.of(ServerNotice)]


async def test_ping_gets_pong_and_a_line_no_rule_matches_is_echoed() -> None:
    async with running_server(framing=Framing.LINE, rules=rules(r"PING (\d+) => PONG {1}\n")) as run:
        client = await connect(run.port)
        await client.send_all(b"PING 42\n")
        assert await receive_exactly(client, 8) == b"PONG 42\n"
        await client.send_all(b"hello\n")
        assert await receive_exactly(client, 6) == b"hello\n"
        state = next(run.server.clients())
        assert (state.messages_in, state.bytes_in, state.bytes_out) == (2, 14, 14)
        assert run.server.totals().rule_hits == (1,)
        (ping,) = run.server.rules()
        assert (ping.hits, ping.last_match, ping.last_client) == (1, "PING 42", 1)
        await client.aclose()


async def test_the_event_of_an_answered_chunk_has_the_reply_and_which_rules_answered() -> None:
    answers = rules(r"^PING (\d+)$ => PONG {1}\n", r"^BANG$ => " + "x" * 2000)
    async with running_server(framing=Framing.LINE, rules=answers) as run:
        client = await connect(run.port)
        await client.send_all(b"PING 1\nhello\nBANG\nPING 2\n")
        expected = b"PONG 1\nhello\n" + b"x" * 2000 + b"PONG 2\n"
        assert await receive_exactly(client, len(expected)) == expected
        await run.recorder.wait_for(lambda: run.recorder.of(DataReceived))
        (event,) = run.recorder.of(DataReceived)
        assert isinstance(event, DataAnswered)
        assert (event.messages, event.answered, event.rules) == (4, 3, (1, 2))
        # The replies alone (not the echoed line), the first EVENT_DATA_BYTES of them, and their full length.
        assert event.reply == (b"PONG 1\n" + b"x" * 2000)[:EVENT_DATA_BYTES]
        assert event.reply_size == len(b"PONG 1\n" + b"x" * 2000 + b"PONG 2\n")
        await client.send_all(b"hello again\n")  # no rule: a plain echo and a plain event
        assert await receive_exactly(client, 12) == b"hello again\n"
        await run.recorder.wait_for(lambda: len(run.recorder.of(DataReceived)) == 2)
        assert type(run.recorder.of(DataReceived)[1]) is DataReceived
        await client.aclose()


async def test_lines_split_across_chunks_and_many_lines_in_one_chunk() -> None:
    async with running_server(framing=Framing.LINE, rules=rules(r"^PING (\d+)$ => PONG {1} #{count}\n")) as run:
        client = await connect(run.port)
        await client.send_all(b"PI")
        await trio.sleep(0.05)  # the server reads the half line on its own
        await client.send_all(b"NG 1\nno\nPING 2\nPING")
        expected = b"PONG 1 #1\nno\nPONG 2 #3\n"
        assert await receive_exactly(client, len(expected)) == expected
        await client.send_eof()  # the partial line at the end is a message too: no rule, so its echo
        assert await receive_until_eof(client) == b"PING"
        await client.aclose()


async def test_a_binary_rule_matches_a_frame_sent_as_one_chunk() -> None:
    async with running_server(rules=rules(r"\x02(..)\x03 => \x06{1}\x03")) as run:
        client = await connect(run.port)
        await client.send_all(b"\x02\x00\xff\x03")
        assert await receive_exactly(client, 4) == b"\x06\x00\xff\x03"
        await client.send_all(b"\x02abc\x03")  # three bytes: no match, so the echo
        assert await receive_exactly(client, 5) == b"\x02abc\x03"
        await client.aclose()


async def test_once_fires_once_per_client() -> None:
    hello = compile_rule(1, "--rule 1", "hello", r"welcome, #{client} from {peer}\n", once=True)
    async with running_server(framing=Framing.LINE, rules=(hello,)) as run:
        first = await connect(run.port)
        await first.send_all(b"hello\n")
        port = first.socket.getsockname()[1]
        expected = f"welcome, #1 from 127.0.0.1:{port}\n".encode()
        assert await receive_exactly(first, len(expected)) == expected
        await first.send_all(b"hello\n")
        assert await receive_exactly(first, 6) == b"hello\n"
        second = await connect(run.port)
        await second.send_all(b"hello\n")
        assert (await receive_exactly(second, 12)).startswith(b"welcome, #2 ")
        assert run.server.totals().rule_hits == (2,)
        await first.aclose()
        await second.aclose()


async def test_the_first_hit_of_each_rule_is_a_notice_and_the_totals_count_every_hit() -> None:
    async with running_server(rules=rules("a => A", "b => B", "c => C")) as run:
        client = await connect(run.port)
        for message in (b"a", b"a", b"b", b"a"):
            await client.send_all(message)
            assert await receive_exactly(client, 1) == message.upper()
        await run.recorder.wait_for(lambda: len(notices(run)) == 2)
        assert notices(run) == ["rule 1 (a) first hit, by #1: a", "rule 2 (b) first hit, by #1: b"]
        await client.aclose()
        run.server.stop()
        await run.recorder.wait_for(lambda: run.recorder.of(ServerStopped))
    (stopped,) = run.recorder.of(ServerStopped)
    assert stopped.totals.rule_hits == (3, 1, 0)


async def test_hits_are_summarised_every_10_s(autojump_clock: trio.testing.MockClock) -> None:
    async with running_server(rules=rules("a => A")) as run:
        client = await connect(run.port)
        for _ in range(3):
            await client.send_all(b"a")
            await receive_exactly(client, 1)
        await run.recorder.wait_for(lambda: any("rule hits" in text for text in notices(run)), timeout=11)
        assert notices(run)[-1] == "rule hits in the last 10 s: rule 1 +3 (3 in all)"
        await trio.sleep(25)  # no hits since: no more summaries
        assert sum("rule hits" in text for text in notices(run)) == 1
        await client.aclose()


async def test_two_clients_answered_at_once_each_get_their_own_exact_answered_counts() -> None:
    # Each chunk of 100 lines is answered in several batches, one write (a scheduler pass) apart, so the
    # two clients' answers interleave; the shared book's hits must not leak into the other's count.
    lines, rounds = 100, 5
    async with running_server(framing=Framing.LINE, rules=rules("^a$ => " + "A" * 2000 + "\\n")) as run:
        clients = [await connect(run.port) for _ in range(2)]

        async def talk(client: trio.SocketStream) -> None:
            for _ in range(rounds):
                await client.send_all(b"a\n" * lines)
                await receive_exactly(client, lines * 2001)

        async with trio.open_nursery() as nursery:
            for client in clients:
                nursery.start_soon(talk, client)
        assert run.server.totals().rule_hits == (2 * lines * rounds,)

        def answered() -> list[DataAnswered]:
            return run.recorder.of(DataAnswered)

        await run.recorder.wait_for(lambda: sum(e.messages for e in answered()) == 2 * lines * rounds)
        for client_id in (1, 2):
            events = [e for e in answered() if e.client_id == client_id]
            assert [e.answered for e in events] == [e.messages for e in events]  # every line was a hit
            assert sum(e.answered for e in events) == lines * rounds
        for client in clients:
            await client.aclose()


async def test_a_match_past_the_first_4_KiB_is_not_seen() -> None:
    async with running_server(rules=rules("needle => found")) as run:
        client = await connect(run.port)
        late = b"." * RULE_PREFIX_BYTES + b"needle"
        await client.send_all(late)
        assert await receive_exactly(client, len(late)) == late
        await client.aclose()


class SearchSpy:
    """A compiled pattern that records how many bytes each search may look at."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.spans: list[int] = []

    def search(self, string: bytes, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[bytes] | None:
        self.spans.append(min(len(string), endpos) - pos)
        return self.pattern.search(string, pos, endpos)


async def test_a_slow_pattern_on_a_long_line_costs_only_the_prefix() -> None:
    # \s*x is quadratic in what it searches: about 3 s on a 64 KiB line here, 15 ms on its first 4 KiB. What it
    # costs is what it is given to search: the prefix, whatever the message's length (timing it would test
    # the machine).
    (rule,) = rules(r"\s*x => y")
    spy = SearchSpy(rule.pattern)
    async with running_server(framing=Framing.LINE, rules=(dataclasses.replace(rule, pattern=spy),)) as run:
        hostile = await connect(run.port)
        other = await connect(run.port)
        await hostile.send_all(b" " * RULE_LINE_BYTES)  # a partial line this long is a message as it is
        assert len(await receive_exactly(hostile, RULE_LINE_BYTES)) == RULE_LINE_BYTES
        await other.send_all(b"ok\n")
        assert await receive_exactly(other, 3) == b"ok\n"
        assert spy.spans and max(spy.spans) == RULE_PREFIX_BYTES
        await hostile.aclose()
        await other.aclose()


async def test_rules_work_over_tls_too(tmp_path: Path) -> None:
    certificates: Certificates = issue_certificates(tmp_path)
    async with running_server(
        framing=Framing.LINE, tls=certificates.settings(), rules=rules(r"PING (\d+) => PONG {1}\n")
    ) as run:
        client = await connect_tls(run.port, certificates.client_context())
        await client.send_all(b"PING 7\nhi\n")
        assert await receive_exactly(client, 10) == b"PONG 7\nhi\n"  # type: ignore[arg-type]
        assert run.server.totals().rule_hits == (1,)
        await client.aclose()
