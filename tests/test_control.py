"""The control socket in process: subscriptions, the protocol, bad input, who may attach, the socket file."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_echo.control import protocol
from tui_echo.control.listener import ControlSettings, open_control
from tui_echo.control.paths import ControlError, ensure_private_dir, may_attach
from tui_echo.server.config import ServerConfig
from tui_echo.server.server import EchoServer
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    DataReceived,
    ServerNotice,
    ServerStopped,
    ServerTotals,
)
from tui_echo.server.subscription import Subscription
from tui_echo.times import parse_utc_time
from tui_echo.wire.events import decode_event

from .control_helpers import controlled_server
from .helpers import TIMEOUT, connect, receive_exactly, receive_until_eof

pytestmark = pytest.mark.trio


def data_event(client_id: int = 1) -> DataReceived:
    return DataReceived(
        client_id=client_id, data=b"x", size=1, at=0.0, messages=1, messages_in=1, bytes_in=1, bytes_out=1
    )


def connected(client_id: int) -> ClientConnected:
    return ClientConnected(client_id=client_id, peer=("127.0.0.1", 1), at=0.0)


# ---- the subscription's bounds (pure, no sockets) --------------------------------------------


async def test_a_subscription_caps_data_events_and_counts_the_rest() -> None:
    subscription = Subscription(0.0, lambda s: None, data_rate=100, data_burst=10)
    for i in range(1000):
        subscription.data(data_event(), i / 1000)  # 1000 events in one second
    taken = subscription.take()
    assert 100 <= len(taken) <= 115  # the burst, then about 100 a second
    assert subscription.data_dropped == 1000 - len(taken)


async def test_past_its_bound_a_subscription_goes_out_of_sync_and_never_silently_loses_lifecycle() -> None:
    subscription = Subscription(0.0, lambda s: None, limit=10, data_limit=5)
    for i in range(8):
        subscription.data(data_event(), float(i))
    assert subscription.data_dropped == 3  # data stops at its own, lower bound: lifecycle still fits
    for client_id in range(1, 6):
        subscription.lifecycle(connected(client_id))
    assert not subscription.out_of_sync and len(subscription.take()) == 10
    for client_id in range(1, 16):
        subscription.lifecycle(connected(client_id))
    assert subscription.out_of_sync  # it must get a snapshot: 15 events did not fit
    assert subscription.lost == 15 and subscription.take() == []
    subscription.resynced()
    subscription.lifecycle(connected(99))
    assert subscription.take() == [connected(99)]


@pytest.mark.parametrize("overflowed", [True, False], ids=["stop overflows", "stop after overflow"])
async def test_the_stop_reaches_a_subscriber_that_fell_behind_after_its_snapshot(overflowed: bool) -> None:
    """A stop with 10,000 clients is 10,000 disconnects: the console's queue overflows, and still it
    learns the server stopped (after the fresh snapshot), as the last event."""
    subscription = Subscription(0.0, lambda s: None, limit=10)
    for client_id in range(1, 11 if overflowed else 16):
        subscription.lifecycle(connected(client_id))  # (disconnects at a stop: the queue cares not which)
    stopped = ServerStopped(at=1.0, totals=ServerTotals(*[0] * 8))
    subscription.lifecycle(stopped)
    assert subscription.out_of_sync and subscription.take() == []
    subscription.resynced()
    assert subscription.take() == [stopped]
    subscription.resynced()  # a later snapshot sends it no more
    assert subscription.take() == []


# ---- who may attach; the folder --------------------------------------------------------------


async def test_only_the_same_user_or_root_may_attach() -> None:
    assert may_attach(1000, 1000)
    assert may_attach(0, 1000)
    assert not may_attach(1001, 1000)
    assert not may_attach(65534, 0)


async def test_a_fallback_folder_someone_else_made_or_opened_up_is_refused(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    ensure_private_dir(mine)
    assert stat.S_IMODE(os.stat(mine).st_mode) == 0o700
    opened = tmp_path / "opened"
    opened.mkdir(mode=0o755)
    os.chmod(opened, 0o755)
    with pytest.raises(ControlError, match="mode 0755"):
        ensure_private_dir(opened)
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(ControlError, match="not a folder"):
        ensure_private_dir(link)
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
        with pytest.raises(ControlError, match="belongs to uid 65534"):
            ensure_private_dir(theirs)


# ---- the socket file ---------------------------------------------------------------------------


async def test_the_socket_is_private_and_removed_when_the_server_stops(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        assert stat.S_IMODE(os.stat(run.path).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(run.path).st_mode)
    assert not run.path.exists()


async def test_a_stale_socket_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody answers: what a killed server leaves
    async with controlled_server(tmp_path) as run:
        assert run.path == path
        second = EchoServer(ServerConfig(port=0), trio.open_memory_channel(1)[0])
        second.listen()
        with pytest.raises(ControlError, match="already answers"):
            open_control(second, ControlSettings(str(path)))
        for listener in second._listeners:
            listener.close()
        (tmp_path / "file").write_text("not a socket")
        with pytest.raises(ControlError, match="not a socket"):
            open_control(second, ControlSettings(str(tmp_path / "file")))


# ---- the protocol ------------------------------------------------------------------------------


async def test_hello_snapshot_events_counts_and_commands(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        client = await connect(run.port)
        await client.send_all(b"before\n")
        await receive_exactly(client, 7)
        console = await run.console()
        snapshot = await console.read_snapshot()
        assert snapshot["server"]["port"] == run.port and snapshot["server"]["pid"] == os.getpid()
        assert [(c["client"], c["messages_in"], c["bytes_in"]) for c in snapshot["clients"]] == [(1, 1, 7)]
        assert snapshot["totals"]["clients_now"] == 1

        await client.send_all(b"\x00\xffbin\n")
        await receive_exactly(client, 6)
        data = await console.read_until("event", event="data")
        assert decode_event(data) == DataReceived(
            client_id=1,
            data=b"\x00\xffbin\n",
            size=6,
            at=parse_utc_time(data["time"]),
            messages=1,
            messages_in=2,
            bytes_in=13,
            bytes_out=13,
        )
        counts = await console.read_until("counts")
        assert counts["clients"][0]["messages_in"] == 2

        assert (await console.command(1, "send", client=1, data_b64=protocol.data_b64(b"hi\n")))["ok"]
        assert await receive_exactly(client, 3) == b"hi\n"
        refused = await console.command(2, "kick", client=99)
        assert (refused["ok"], refused["error"]) == (False, "no_such_client")
        assert (await console.command("k", "kick", client=1))["ok"]
        assert await receive_until_eof(client) == b""
        gone = await console.read_until("event", event="disconnected")
        assert (gone["client"], gone["reason"], gone["clients_now"]) == (1, "kicked", 0)
        notices = [e.message for e in run.recorder.of(ServerNotice)]
        assert f"#1 kicked by console uid {os.getuid()} pid {os.getpid()}" in notices
        await console.aclose()


async def test_counts_reach_a_console_within_a_quarter_second(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    # trio's clock jumps whenever every task waits: the cadence is exact, however slow the machine.
    async with controlled_server(tmp_path) as run:
        console = await run.console()
        await console.read_snapshot()
        client = await connect(run.port)
        for n in range(3):
            await client.send_all(b"tick\n")
            await receive_exactly(client, 5)
            changed = trio.current_time()
            while (counts := await console.read_until("counts"))["totals"]["messages_in"] < n + 1:
                pass
            assert trio.current_time() - changed <= protocol.COUNTS_SECONDS
            assert counts["clients"][0]["messages_in"] == n + 1
        await client.aclose()
        await console.aclose()


async def test_the_counts_after_a_snapshot_carry_only_the_clients_that_changed(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        clients = [await connect(run.port) for _ in range(3)]
        for client in clients:
            await client.send_all(b"hello\n")
            await receive_exactly(client, 6)
        console = await run.console()
        snapshot = await console.read_snapshot()
        assert [record["client"] for record in snapshot["clients"]] == [1, 2, 3]
        await clients[1].send_all(b"only me\n")
        await receive_exactly(clients[1], 8)
        while not (counts := await console.read_until("counts"))["clients"]:
            pass  # a counts message of the totals alone: nothing changed yet
        assert [(record["client"], record["messages_in"]) for record in counts["clients"]] == [(2, 2)]
        for client in clients:
            await client.aclose()
        await console.aclose()


async def test_a_console_that_leaves_is_dropped_and_the_stop_reaches_the_others(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        leaving = await run.console()
        staying = await run.console()
        await leaving.read_snapshot()
        await staying.read_snapshot()
        await leaving.aclose()
        with trio.fail_after(TIMEOUT):
            while len(run.server._outbox.subscribers) > 1:
                await trio.sleep(0.01)
        assert (await staying.command(1, "stop"))["ok"]
        await staying.read_until("event", event="stopped")
        while (message := await staying.read()) is not None:  # then its last counts, and EOF
            assert message["type"] == "counts"


BAD_LINES = [
    (b"garbage{", "bad_json"),
    (b"[1, 2]", "bad_message"),
    (b'{"type": "command", "id": 1, "command": "explode"}', "unknown_command"),
    (b'{"type": "command", "id": 2, "command": "kick", "client": "one"}', "bad_type"),
    (b'{"type": "command", "id": 3, "command": "kick", "client": true}', "bad_type"),
    (b'{"type": "command", "id": 4, "command": "send", "client": 1, "data_b64": "!!"}', "bad_value"),
    (b'{"type": "mystery"}', "unknown_type"),
]


async def test_each_bad_line_gets_an_error_and_repeated_errors_close_the_console(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        wrong_version = await run.console()
        await wrong_version.stream.send_all(b'{"type": "hello", "protocol": "tui-echo-control", "version": 99}\n')
        # (the helper already said a correct hello; the second is an error too)
        console = await run.console(events=False)
        await console.read_snapshot()
        for line, code in BAD_LINES[: protocol.MAX_ERRORS - 1]:
            await console.send_line(line)
            message = await console.read()
            assert message is not None and message.get("error") == code, (line, message)
        await console.send_line(b"x" * (protocol.MAX_LINE_BYTES + 10))
        assert (await console.read() or {}).get("error") == "line_too_long"
        assert (await console.read() or {}).get("error") == "too_many_errors"
        assert await console.read() is None

        raw = await trio.open_unix_socket(str(run.path))
        await raw.send_all(b'{"type": "hello", "protocol": "another"}\n{"type":"hello"')
        await raw.send_eof()
        replies = (await receive_until_eof(raw)).decode().splitlines()
        errors = [json.loads(line).get("error") for line in replies[1:]]
        assert errors == ["bad_protocol", "half_line"]
        await wrong_version.aclose()


@pytest.mark.parametrize("version", [1, 4, 6, "5", None])
async def test_a_console_of_another_version_gets_one_line_naming_both_versions_and_eof(
    tmp_path: Path, version: object
) -> None:
    async with controlled_server(tmp_path) as run:
        client = await connect(run.port)
        raw = await trio.open_unix_socket(str(run.path))
        hello = {"type": "hello", "protocol": "tui-echo-control", "version": version, "events": False}
        # What follows the hello is never read as this version's: no snapshot, no reply to the command.
        kick = protocol.command_message(1, "kick", client=1)
        await raw.send_all(protocol.encode_line(hello) + protocol.encode_line(kick))
        with trio.fail_after(TIMEOUT):
            replies = [json.loads(line) for line in (await receive_until_eof(raw)).splitlines()]
        assert [reply["type"] for reply in replies] == ["hello", "error"]
        assert replies[0]["version"] == protocol.VERSION == 5
        assert replies[1] == {
            "type": "error",
            "error": "bad_version",
            "message": f"this server speaks version 5 of the control protocol and the console version {version!r}: "
            "use a console from the same tui-echo release as the server",
        }
        await client.send_all(b"not kicked\n")
        assert await receive_exactly(client, 11) == b"not kicked\n"
        await client.aclose()


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.lists(st.integers(), max_size=3)
)
COMMAND_LINES = st.fixed_dictionaries(
    {
        "type": st.just("command"),
        # Commands that cannot touch the test's client (#1) when they succeed: a valid stop, kick_all or
        # broadcast would rightly change what the test checks.
        "command": st.one_of(st.sampled_from(["kick", "send"]), JSON_VALUES),
    },
    optional={
        "id": st.one_of(st.integers(), st.text(max_size=5), JSON_VALUES),
        "client": st.one_of(st.integers(min_value=-2, max_value=3), JSON_VALUES).filter(
            lambda v: not (type(v) is int and v == 1)
        ),
        "data_b64": st.one_of(st.sampled_from(["aGk=", "", "!!", "aGk"]), JSON_VALUES),
    },
)
OTHER_LINES = st.one_of(
    st.binary(max_size=200).filter(lambda b: b"\n" not in b),
    st.dictionaries(st.sampled_from(["type", "id", "version", "protocol"]), JSON_VALUES).map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(["hello", "reply", "event"]), "version": JSON_VALUES}),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(
        st.one_of(COMMAND_LINES.map(json.dumps), OTHER_LINES).map(
            lambda x: x if isinstance(x, bytes) else (x.encode() if isinstance(x, str) else json.dumps(x).encode())
        ),
        max_size=12,
    ),
    cut=st.booleans(),
)
async def test_bad_input_never_crashes_or_stalls_the_server(tmp_path_factory, lines: list[bytes], cut: bool) -> None:
    async with controlled_server(tmp_path_factory.mktemp("fuzz")) as run:
        client = await connect(run.port)
        raw = await trio.open_unix_socket(str(run.path))
        stream = b"".join(line + b"\n" for line in lines)
        if cut:
            stream += b'{"type": "comm'
        hello = protocol.encode_line(protocol.hello("console", events=False))
        await raw.send_all(hello + stream)
        await raw.send_eof()
        with trio.fail_after(TIMEOUT):
            replies = await receive_until_eof(raw)  # the server answers and closes: it never hangs
        for line in replies.splitlines():
            assert json.loads(line)["type"] in ("hello", "snapshot", "snapshot_clients", "reply", "error")
        await raw.aclose()
        await client.send_all(b"still here\n")
        assert await receive_exactly(client, 11) == b"still here\n"  # the echo never noticed
        console = await run.console(events=False)
        assert (await console.read_snapshot())["totals"]["clients_now"] == 1
        await console.aclose()
        await client.aclose()
        await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
        assert not [n.message for n in run.recorder.of(ServerNotice) if "internal error" in n.message]
