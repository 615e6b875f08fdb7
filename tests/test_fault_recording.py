"""Faults and --record together: the fault wrapper sits outside the recording tap, so a recording shows
what the client really got (a corrupted echo recorded as sent, as it went out), and a replay the faults."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tui_echo.recording.playback import Playback
from tui_echo.recording.reader import load, read
from tui_echo.server.events import ClientDisconnected, FaultChanged
from tui_echo.server.faults import parse_faults

from .helpers import connect, receive_exactly
from .recording_helpers import recorded_server

pytestmark = pytest.mark.trio


async def test_a_corrupted_echo_is_recorded_as_the_client_got_it(tmp_path: Path) -> None:
    payload = random.Random(3).randbytes(20_000)
    async with recorded_server(tmp_path, fault=parse_faults("corrupt=0.004"), fault_seed=7) as run:
        client = await connect(run.port)
        await client.send_all(payload)
        got = await receive_exactly(client, len(payload))
        assert got != payload  # the fault flipped some bytes
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
    (stream,) = load([str(run.path)]).clients.values()
    assert stream.received == payload
    assert stream.sent == got


async def test_a_replay_shows_the_faults_a_client_had(tmp_path: Path) -> None:
    async with recorded_server(tmp_path, fault=parse_faults("latency=10ms")) as run:
        client = await connect(run.port)
        await client.send_all(b"hi")
        assert await receive_exactly(client, 2) == b"hi"
        await run.recorder.wait_for(lambda: run.recorder.of(FaultChanged))
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
    playback = Playback([str(run.path)])
    changed = next(e for _, e in read([str(run.path)]) if isinstance(e, FaultChanged))
    assert (changed.faults, changed.by) == ("latency=10ms", "--fault")
    events = playback.advance(changed.at)  # the client as it was, faulted, before it left
    assert changed in events
    assert [state.fault for state in playback.clients()] == ["latency=10ms"]
