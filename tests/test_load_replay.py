"""tui-echo load --replay: a recorded client played against a server, every answer compared."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tui_echo.recording.reader import load
from tui_echo.recording.play import messages
from tui_echo.server.events import ClientDisconnected
from tui_echo.server.rules import parse_rule_option

from .helpers import connect, receive_exactly, running_server
from .process import run_cli
from .recording_helpers import recorded_server

pytestmark = pytest.mark.trio

CONVERSATION = [(b"hello\n", b"hello\n"), (b"PING", b"PONG"), (bytes(range(256)), bytes(range(256)))]


async def record_a_session(tmp_path: Path) -> Path:
    async with recorded_server(tmp_path, rules=(parse_rule_option("^PING$ => PONG", 1, 1),)) as run:
        client = await connect(run.port)
        for sent, answer in CONVERSATION:
            await client.send_all(sent)
            assert await receive_exactly(client, len(answer)) == answer
            await trio.sleep(0.02)  # one chunk each
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
    return run.path


async def test_a_recorded_client_passes_against_the_same_server_and_the_first_difference_is_reported(
    tmp_path: Path,
) -> None:
    path = await record_a_session(tmp_path)
    recorded = messages(load([str(path)]).client(1))
    assert [(m.number, m.data, m.answer) for m in recorded] == [(n, s, a) for n, (s, a) in enumerate(CONVERSATION, 1)]
    for reply, code in (("PONG", 0), ("PANG", 1)):
        async with running_server(rules=(parse_rule_option(f"^PING$ => {reply}", 1, 1),)) as run:
            args = ["load", "--replay", str(path), "--client", "1", f"127.0.0.1:{run.port}", "--fast"]
            done = await trio.to_thread.run_sync(run_cli, args)
        assert done.returncode == code, done
        if code == 0:
            assert done.stdout == "#1: 3 messages, 266 bytes answered, every answer as recorded\n"
        else:
            assert done.stderr == (
                "tui-echo load --replay: #1: message 2 differs at byte 1 of its answer: expected 0x4f, got 0x41\n"
            )


async def test_recorded_pacing_and_a_server_that_answers_less(tmp_path: Path) -> None:
    path = await record_a_session(tmp_path)
    async with running_server(rules=(parse_rule_option("^PING$ => P", 1, 1),)) as run:
        args = ["load", "--replay", str(path), "--client", "1", str(run.port), "--timeout", "0.5"]
        done = await trio.to_thread.run_sync(run_cli, args)
    assert done.returncode == 1, done
    assert "message 2 differs at byte 1 of its answer: expected 0x4f, got nothing" in done.stderr


async def test_an_unknown_client_is_one_line(tmp_path: Path) -> None:
    path = await record_a_session(tmp_path)
    done = await trio.to_thread.run_sync(run_cli, ["load", "--replay", str(path), "--client", "9", "1"])
    assert (done.returncode, done.stderr) == (2, "tui-echo load --replay: error: no client #9 in the recording\n")
