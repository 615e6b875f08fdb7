"""tui-echo replay: the monitor (Pilot) and the headless log, fed from a real recording."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import trio

from tui_echo.monitor.replay import ReplayApp, ReplaySource
from tui_echo.recording.playback import Playback
from tui_echo.recording.reader import load
from tui_echo.server.events import ClientConnected, ClientDisconnected, DataReceived

from .helpers import connect, receive_exactly
from .process import run_cli
from .recording_helpers import recorded_server


async def record_two_clients(tmp_path: Path) -> Path:
    """#1 says "one"; #2 comes and says "two" and "three"; #1 leaves; #2 leaves. A pause between each."""
    async with recorded_server(tmp_path) as run:
        one = await connect(run.port)
        await one.send_all(b"one")
        assert await receive_exactly(one, 3) == b"one"
        await trio.sleep(0.3)
        two = await connect(run.port)
        for word in (b"two", b"three"):
            await two.send_all(word)
            assert await receive_exactly(two, len(word)) == word
            await trio.sleep(0.05)
        await trio.sleep(0.3)
        await one.aclose()
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientDisconnected)) == 1)
        await trio.sleep(0.3)
        await two.aclose()
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientDisconnected)) == 2)
    return run.path


@pytest.mark.trio
async def test_the_playback_has_the_clients_and_counts_of_each_moment(tmp_path: Path) -> None:
    path = await record_two_clients(tmp_path)
    recording = load([str(path)])
    one, two = recording.client(1), recording.client(2)
    assert one.ended is not None and two.ended is not None
    playback = Playback([str(path)])
    playback.seek(one.ended.at - 0.1)  # both connected, #2 has said both words
    assert sorted((c.client_id, c.messages_in, c.bytes_in, c.bytes_out) for c in playback.clients()) == [
        (1, 1, 3, 3),
        (2, 2, 8, 8),
    ]
    playback.seek(two.connected_at - 0.05)  # back: only #1
    assert [(c.client_id, c.bytes_in) for c in playback.clients()] == [(1, 3)]
    events = playback.advance(one.ended.at)
    assert [type(e) for e in events] == [ClientConnected, DataReceived, DataReceived, ClientDisconnected]
    totals = playback.totals()
    assert (totals.clients_total, totals.clients_now, totals.bytes_in, totals.messages_in) == (2, 1, 11, 3)
    only_two = Playback([str(path)], client=2)
    only_two.seek(only_two.span.end)
    assert only_two.totals().clients_total == 1


@pytest.mark.tui
def test_replay_in_the_monitor_shows_the_recorded_rows_and_counts_at_a_position(tmp_path: Path) -> None:
    path = trio.run(record_two_clients, tmp_path)
    asyncio.run(replay_in_the_monitor(path))


async def replay_in_the_monitor(path: Path) -> None:
    recording = load([str(path)])
    one_left = recording.client(1).ended
    assert one_left is not None
    source = ReplaySource(Playback([str(path)]), "rec.jsonl", speed=1.0)
    app = ReplayApp(source, feed_lines=100, handle_signals=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")  # paused where it starts
        assert source.paused
        source.seek_to(one_left.at - 0.1)
        app.main.tick()
        await pilot.pause(0.1)
        table = app.main.query_one("ConnectionsTable")
        rows = {(row.client_id, row.messages, row.bytes_in, row.bytes_out) for row in table.rows}  # type: ignore[attr-defined]
        assert rows == {(1, 1, 3, 3), (2, 2, 8, 8)}
        bar = str(app.main.query_one("#replay-position").render())
        assert "replay paused" in bar
        await pilot.press("k")
        await pilot.pause(0.05)
        assert any("off in replay" in str(n.message) for n in app._notifications)
        await pilot.press("right")  # 10 s on: past the end of a 1 s recording
        await pilot.pause(0.1)
        assert source.playback.finished
        assert not [row for row in table.rows if not row.gone]  # type: ignore[attr-defined]
        assert "replay end" in str(app.main.query_one("#replay-position").render())
        await pilot.press("left", "p", "right_square_bracket")
        assert (source.paused, source.speed) == (False, 2.0)
        descriptions = [b.binding.description for b in app.screen.active_bindings.values()]
        assert "Kick: off" in descriptions and "Pause" in descriptions


def test_headless_replay_prints_the_log_it_had_and_json_too(tmp_path: Path) -> None:
    path = trio.run(record_two_clients, tmp_path)
    done = run_cli(["replay", str(path), "--headless"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "listening on 127.0.0.1:" in lines[0]
    said = [line.split("  ")[-1] for line in lines[1:]]
    assert said[:5] == [
        "connected (1 now)",
        "echoed 3 B: one",
        "connected (2 now)",
        "echoed 3 B: two",
        "echoed 5 B: three",
    ]
    assert said[5].startswith("disconnected: closed by peer (1 msg, 3 B in, 3 B out")
    assert said[6].startswith("disconnected: closed by peer (2 msgs, 8 B in, 8 B out")
    assert said[7].startswith("server stopped: 2 clients")
    two = run_cli(["replay", str(path), "--headless", "--json", "--client", "2"])
    records = [json.loads(line) for line in two.stdout.splitlines()]
    assert [r["event"] for r in records] == ["listening", "connected", "data", "data", "disconnected", "stopped"]
    assert {r.get("client") for r in records} == {None, 2}
