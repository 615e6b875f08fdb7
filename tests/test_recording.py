"""--record: every byte of every client, both ways, checked against what real clients sent and got."""

from __future__ import annotations

import json
import os
import random
import stat
from pathlib import Path

import pytest

from tui_echo.recording.reader import load, read
from tui_echo.recording.writer import RecordSettings
from tui_echo.server.commands import Broadcast, Label, SendTo
from tui_echo.server.config import Mode
from tui_echo.server.events import ClientDisconnected
from tui_echo.server.rules import parse_rule_option
from tui_echo.wire.recording import Gap, Moved, MovedLines, decode_gap, decode_moved, encode_gap

from .helpers import connect, receive_exactly
from .process import HeadlessProcess, run_cli
from .recording_helpers import recorded_server, until_eof
from .tls_helpers import connect_tls, issue_certificates

pytestmark = pytest.mark.trio


def noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def test_a_plain_client_with_an_operator_send_and_a_rule_is_recorded_byte_for_byte(tmp_path: Path) -> None:
    rule = parse_rule_option("^PING$ => PONG", 1, 1)
    got: dict[int, bytes] = {}
    async with recorded_server(tmp_path, rules=(rule,)) as run:
        clients = [await connect(run.port) for _ in range(2)]
        sent = {1: noise(300_000, 1), 2: b"PING"}
        await clients[0].send_all(sent[1][:1000])
        assert await receive_exactly(clients[0], 1000) == sent[1][:1000]
        run.service.server.command_nowait(SendTo(1, b"from the operator\n"))
        assert await receive_exactly(clients[0], 18) == b"from the operator\n"
        await clients[0].send_all(sent[1][1000:])
        assert await receive_exactly(clients[0], len(sent[1]) - 1000) == sent[1][1000:]
        await clients[1].send_all(b"PING")
        assert await receive_exactly(clients[1], 4) == b"PONG"
        run.service.server.stop()
        for number, client in enumerate(clients, 1):
            got[number] = await until_eof(client)
        got = {1: sent[1][:1000] + b"from the operator\n" + sent[1][1000:], 2: b"PONG"}
    recording = load([str(run.path)])
    assert {c.client_id: c.received for c in recording.clients.values()} == sent
    assert {c.client_id: c.sent for c in recording.clients.values()} == got
    assert recording.gaps == []
    assert all(isinstance(c.ended, ClientDisconnected) for c in recording.clients.values())
    assert stat.S_IMODE(os.stat(run.path).st_mode) == 0o600
    lines = run.path.read_text().splitlines()
    assert json.loads(lines[0])["event"] == "recording"
    echoed = [json.loads(line) for line in lines if '"echoed":true' in line]
    assert echoed and all("data_b64" not in record for record in echoed)  # an echo carries no second copy


async def test_a_tls_client_is_recorded_in_plaintext(tmp_path: Path) -> None:
    certificates = issue_certificates(tmp_path)
    payload = noise(100_000, 2)
    async with recorded_server(tmp_path, tls=certificates.settings()) as run:
        client = await connect_tls(run.port, certificates.client_context())
        await client.send_all(payload)
        assert await receive_exactly(client, len(payload)) == payload  # type: ignore[arg-type]
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
    (stream,) = load([str(run.path)]).clients.values()
    assert (stream.received, stream.sent) == (payload, payload)


async def test_chat_clients_are_recorded_with_every_line_they_got(tmp_path: Path) -> None:
    async with recorded_server(tmp_path, mode=Mode.CHAT) as run:
        one = await connect(run.port)
        await run.recorder.wait_for(lambda: len(list(run.service.server.clients())) == 1)
        two = await connect(run.port)
        joined = f"* #2 joined from 127.0.0.1:{two.socket.getsockname()[1]}\n".encode()
        assert await receive_exactly(one, len(joined)) == joined
        await one.send_all(b"hello\nsecond ")
        await two.send_all(b"hi\n")
        await one.send_all(b"line\n")
        run.service.server.stop()
        got = {1: await until_eof(one), 2: await until_eof(two)}
        got[1] = joined + got[1]
    recording = load([str(run.path)])
    assert recording.client(1).received == b"hello\nsecond line\n"
    assert recording.client(2).received == b"hi\n"
    assert {c.client_id: c.sent for c in recording.clients.values()} == got
    assert b"<#1> hello\n" in got[2] and b"<#2> hi\n" in got[1]


async def test_rotation_keeps_parts_that_read_back_as_one_recording(tmp_path: Path) -> None:
    record = RecordSettings(str(tmp_path / "rec.jsonl"), max_bytes=20_000, keep=50)
    payload = noise(60_000, 3)
    async with recorded_server(tmp_path, record) as run:
        client = await connect(run.port)
        for at in range(0, len(payload), 1000):
            await client.send_all(payload[at : at + 1000])
            assert await receive_exactly(client, 1000) == payload[at : at + 1000]
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
    parts = sorted(tmp_path.glob("rec.jsonl*"))
    assert len(parts) > 3
    for part in parts:
        assert stat.S_IMODE(os.stat(part).st_mode) == 0o600
        assert part.stat().st_size <= 20_000 + 2_000  # one batch may pass the limit by its last lines
        assert json.loads(part.read_text().splitlines()[0])["event"] == "recording"
    (stream,) = load(str(part) for part in parts).clients.values()
    assert stream.received == payload and stream.sent == payload


async def test_the_records_of_a_recording_round_trip() -> None:
    lines = MovedLines()
    for moved in (
        Moved(3, 1700000000.123, True, b"\x00\xff", 2),
        Moved(3, 1700000000.123, False, b"", 2, True),  # the same millisecond: its time text is reused
        Moved(4, 1700000000.124, False, b'"\\\n', 3),
    ):
        line = lines.line(moved.client_id, moved.at, moved.incoming, moved.data or b"xy", moved.echoed)
        assert decode_moved(json.loads(line)) == moved
    gap = Gap(1700000001.0, 1700000000.5, 1700000000.9, (1, 4), 100, 50, 7, "the disk is full")
    assert decode_gap(json.loads(json.dumps(encode_gap(gap)))) == gap


@pytest.mark.heavy
async def test_a_full_disk_writes_its_gap_record_and_the_echo_goes_on(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes past 200 kB fail with EFBIG, as a full disk fails them with ENOSPC."""
    path = tmp_path / "rec.jsonl"
    server = HeadlessProcess("--no-control", "--record", str(path), file_size=200_000)
    payload = noise(2_000_000, 4)

    async def client() -> None:
        stream = await connect(server.port)
        for at in range(0, len(payload), 20_000):
            await stream.send_all(payload[at : at + 20_000])
            assert await receive_exactly(stream, 20_000) == payload[at : at + 20_000]
        await stream.aclose()

    try:
        await client()
        server.wait_for_text("cannot write (the disk is full)")
        server.wait_for(lambda line: "disconnected" in line)
        assert server.stop()[0] == 0
    finally:
        server.close()
    assert path.stat().st_size <= 200_000
    records = [json.loads(line) for line in path.read_text().splitlines()]  # whole lines only
    gaps = [decode_gap(record) for record in records if record["event"] == "gap"]
    assert gaps and all(gap.clients == (1,) for gap in gaps if gap.bytes_in)
    recorded_in = sum(len(decode_moved(r).data) for r in records if r["event"] == "in")
    assert recorded_in + sum(gap.bytes_in for gap in gaps) == len(payload)  # recorded or said missing, exactly
    assert records[-1]["event"] in ("gap", "stopped")


async def test_ctl_record_start_gives_the_absolute_path_and_stop_ends_it(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    server = HeadlessProcess("--control", str(control))
    server_dir = Path(f"/proc/{server.proc.pid}/cwd").resolve()
    try:
        ctl = ["ctl", str(control), "record"]
        done = run_cli([*ctl, "start", str(tmp_path / "rec.jsonl")])
        assert (done.returncode, done.stdout) == (0, f"recording to {tmp_path / 'rec.jsonl'}\n"), done
        again = run_cli([*ctl, "start", "other.jsonl"])
        assert (again.returncode, again.stderr) == (
            1,
            f"tui-echo ctl: error: already recording to {tmp_path / 'rec.jsonl'}\n",
        )
        client = await connect(server.port)
        await client.send_all(b"recorded")
        assert await receive_exactly(client, 8) == b"recorded"
        await client.aclose()
        server.wait_for(lambda line: "disconnected" in line)
        assert run_cli([*ctl, "status"]).stdout.startswith(f"recording to {tmp_path / 'rec.jsonl'}; gaps 0")
        assert run_cli([*ctl, "stop"]).stdout == f"recorded to {tmp_path / 'rec.jsonl'}\n"
        assert run_cli([*ctl, "stop"]).returncode == 1
        relative = run_cli([*ctl, "start", "relative.jsonl"])  # the server's directory, not ctl's
        assert relative.stdout == f"recording to {server_dir / 'relative.jsonl'}\n", relative
        run_cli([*ctl, "stop"])
        (server_dir / "relative.jsonl").unlink()
    finally:
        assert server.stop()[0] == 0
        server.close()
    (stream,) = load([str(tmp_path / "rec.jsonl")]).clients.values()
    assert (stream.received, stream.sent) == (b"recorded", b"recorded")


async def test_a_recording_with_a_label_and_a_broadcast_reads_back(tmp_path: Path) -> None:
    async with recorded_server(tmp_path) as run:
        client = await connect(run.port)
        await client.send_all(b"hi")
        assert await receive_exactly(client, 2) == b"hi"
        run.service.server.command_nowait(Label(1, "alice"))
        run.service.server.command_nowait(Broadcast(b"all\n"))
        assert await receive_exactly(client, 4) == b"all\n"
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
    kinds = {type(entry).__name__ for _, entry in read([str(run.path)])}
    assert {"ClientLabelled", "DataBroadcast"} <= kinds
    (stream,) = load([str(run.path)]).clients.values()
    assert stream.sent == b"hiall\n"
