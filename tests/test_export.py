"""tui-echo export: a recording as pcapng, read back by the real tshark (follow every stream, expert analysis)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
import trio

from tui_echo.server.commands import Kick, SendTo
from tui_echo.server.events import ClientConnected, ClientDisconnected

from .helpers import TIMEOUT, receive_exactly, reset_on_close
from .process import needs_tool, run_cli
from .recording_helpers import recorded_server

pytestmark = pytest.mark.heavy


def follow(tshark: str, capture: Path, stream: int) -> tuple[bytes, bytes]:
    """What tshark's Follow TCP Stream shows of ``stream``: the client's bytes and the server's."""
    done = subprocess.run(
        [tshark, "-r", str(capture), "-q", "-z", f"follow,tcp,raw,{stream}"],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )  # fmt: skip
    body = done.stdout.split("Node 1:", 1)[1].split("\n", 1)[1]
    client, server = bytearray(), bytearray()
    for line in body.splitlines():
        if line.startswith("="):
            break
        if line.startswith("\t"):
            server += bytes.fromhex(line.strip())
        elif line:
            client += bytes.fromhex(line)
    return bytes(client), bytes(server)


def tshark_fields(tshark: str, capture: Path, *fields: str) -> list[str]:
    args = [tshark, "-r", str(capture), "-T", "fields"] + [arg for field in fields for arg in ("-e", field)]
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, check=True).stdout.splitlines()


@pytest.mark.trio
async def test_tshark_follows_every_client_exactly_and_its_expert_finds_nothing_wrong(tmp_path: Path) -> None:
    """Two servers (127.0.0.1, ::1), each its own recording, exported together: two interfaces, four streams
    (an echo, an operator's send, a reset, a kick), each followed by tshark byte for byte both ways."""
    tshark = needs_tool("tshark")
    rng = random.Random(5)
    sent: list[bytes] = []
    got: list[bytes] = []
    (tmp_path / "v4").mkdir()
    (tmp_path / "v6").mkdir()
    async with (
        recorded_server(tmp_path / "v4") as four,
        recorded_server(tmp_path / "v6", host="::1") as six,
    ):
        for number, run in enumerate([four, six, four, four], 1):
            client_id = len(run.recorder.of(ClientConnected)) + 1
            client = await trio.open_tcp_stream(*run.service.server.addresses[0][:2])
            await run.recorder.wait_for(lambda r=run, n=client_id: len(r.recorder.of(ClientConnected)) == n)
            payload = rng.randbytes([10, 70_000, 200_000, 5][number - 1])
            await client.send_all(payload)
            assert await receive_exactly(client, len(payload)) == payload
            sent.append(payload)
            got.append(payload)
            if number == 2:
                run.service.server.command_nowait(SendTo(client_id, b"operator\n"))
                assert await receive_exactly(client, 9) == b"operator\n"
                got[-1] += b"operator\n"
            if number == 3:  # ends with a reset
                reset_on_close(client)
                await client.aclose()
            elif number == 4:  # kicked: the server closes first
                run.service.server.command_nowait(Kick(client_id))
                assert await client.receive_some(10) == b""
                await client.aclose()
            else:
                await client.aclose()
            await run.recorder.wait_for(lambda r=run, n=client_id: len(r.recorder.of(ClientDisconnected)) == n)
            await trio.sleep(0.002)  # the streams' order in the capture is the order of their connects
    capture = tmp_path / "out.pcapng"
    done = run_cli(["export", str(four.path), str(six.path), "--pcapng", str(capture)])
    assert done.returncode == 0, done.stderr
    for stream in range(4):
        assert follow(tshark, capture, stream) == (sent[stream], got[stream]), stream
    expert = subprocess.run(
        [tshark, "-r", str(capture), "-q", "-z", "expert"], capture_output=True, text=True, timeout=TIMEOUT
    ).stdout.lower()
    for problem in ("retransmission", "out-of-order", "previous segment", "lost", "unseen", "dup ack", "window full"):
        assert problem not in expert, expert
    ends: dict[int, list[str]] = {}
    for line in tshark_fields(tshark, capture, "tcp.stream", "tcp.flags.str"):
        stream, flag = line.split("\t")
        ends.setdefault(int(stream), []).append(flag)
    assert "R" in ends[2][-1] and all("F" not in flag for flag in ends[2])  # the reset
    assert all(any("F" in flag for flag in ends[stream]) for stream in (0, 1, 3))
    first_fin = [next(i for i, f in enumerate(ends[stream]) if "F" in f) for stream in (0, 3)]
    sources = tshark_fields(tshark, capture, "tcp.stream", "tcp.srcport")
    assert first_fin  # the kicked client's FIN comes from the server's port, the closing client's from its own
    by_stream: dict[int, list[int]] = {}
    for line in sources:
        stream, port = line.split("\t")
        by_stream.setdefault(int(stream), []).append(int(port))
    server_port = four.service.server.addresses[0][1]
    assert by_stream[0][first_fin[0]] != server_port and by_stream[3][first_fin[1]] == server_port
    assert set(tshark_fields(tshark, capture, "frame.interface_name")) == {
        f"127.0.0.1:{server_port}",
        f"[::1]:{six.service.server.addresses[0][1]}",
    }


def test_export_of_a_file_that_is_no_recording_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"event":"connected"}\n')
    done = run_cli(["export", str(tmp_path / "x.jsonl"), "--pcapng", str(tmp_path / "o.pcapng")])
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "not a recording" in done.stderr
