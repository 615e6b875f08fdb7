"""``tui-echo demo``: the real demo app with its cast process against a real server, and the cast's parts."""

from __future__ import annotations

import itertools
import re
import socket
import subprocess
import sys
import time

import pytest
import trio

from tui_echo.demo import cast, script
from tui_echo.demo.source import DemoServer, demo_config
from tui_echo.server.commands import Kick
from tui_echo.server.events import ClientDisconnected, ClientLabelled, DataAnswered, DataReceived, DisconnectReason

from .helpers import TIMEOUT, running_server
from .monitor_helpers import Monitor, run_monitor, screen_text
from .process import process_gone, run_cli

FIRST_SCREEN_SECONDS = 10.0  # the promise: several clients at work on the first screen within this


def working(monitor: Monitor) -> int:
    return sum(1 for row in monitor.table.rows if not row.gone and row.messages > 0)


@pytest.mark.tui
def test_the_demo_shows_four_clients_working_and_says_how_to_join() -> None:
    # How soon, by the cast's own clock, is test_the_cast_has_four_clients_working_within_10_s: here the
    # machine's speed (a cast process starting beside the app) would count.
    server = DemoServer()  # at speed 1, as a user starts it

    async def test(monitor: Monitor) -> None:
        await monitor.until(lambda: working(monitor) >= 4, "four clients with messages")
        screen = "\n".join(screen_text(monitor.app))
        assert f"demo · join in: nc 127.0.0.1 {monitor.port}" in screen
        notices = [entry.text for entry in monitor.feed.entries if entry.text.startswith("demo")]
        assert notices[0].startswith(f"demo: join in with nc 127.0.0.1 {monitor.port} · 8 simulated"), notices
        assert "idle timeout 20s (dave goes quiet), write timeout 30s (frank never reads his echo)" in notices[1]

    run_monitor(test, server=server)


@pytest.mark.trio
async def test_the_cast_has_four_clients_working_within_10_s(autojump_clock: trio.abc.Clock) -> None:
    # At speed 1, on trio's clock, which jumps whenever every task waits: the cast's own schedule, exactly.
    async with running_server() as running, trio.open_nursery() as nursery:
        began = trio.current_time()
        nursery.start_soon(cast.perform, running.port, cast.Pace(speed=1))

        def talking() -> set[int]:
            return {e.client_id for e in running.recorder.events if isinstance(e, DataReceived)}

        await running.recorder.wait_for(lambda: len(talking()) >= 4, timeout=FIRST_SCREEN_SECONDS)
        assert trio.current_time() - began <= FIRST_SCREEN_SECONDS
        nursery.cancel_scope.cancel()


@pytest.mark.tui
def test_on_a_narrow_terminal_the_banner_makes_room_and_the_feed_still_says_how_to_join() -> None:
    async def test(monitor: Monitor) -> None:
        await monitor.until(lambda: any(e.text.startswith("demo") for e in monitor.feed.entries), "the notice")
        screen = "\n".join(screen_text(monitor.app))
        assert "Connections · " in screen and "✕ Kick all" in screen
        assert "join in: nc" not in screen.split("Kick all")[0]

    run_monitor(test, size=(50, 14), server=DemoServer(speed=4))


@pytest.mark.tui
def test_q_quits_the_demo_cleanly_and_ends_the_cast() -> None:
    server = DemoServer(speed=4)

    async def test(monitor: Monitor) -> None:
        await monitor.until(lambda: working(monitor) >= 4, "four clients with messages")
        assert server.cast is not None and server.cast.poll() is None
        await monitor.pilot.press("q")
        await monitor.until(lambda: not monitor.app.is_running, "the app to exit")
        assert monitor.app.return_code == 0

    run_monitor(test, server=server)  # also fails if the cast's process is still running when collected
    assert server.cast is not None
    assert server.cast.returncode == 0  # it ended by itself when told to, not killed
    assert process_gone(server.cast.pid)


@pytest.mark.parametrize("args", [["--speed", "0"], ["--speed", "fast"], ["--speed", "21"], ["--port", "70000"]])
def test_bad_demo_arguments_give_one_line_and_exit_2(args: list[str]) -> None:
    done = run_cli(["demo", *args])
    assert done.returncode == 2
    assert re.fullmatch(r"tui-echo demo: error: .+\n", done.stderr), done.stderr


def test_the_demo_without_a_terminal_says_so_in_one_line() -> None:
    done = run_cli(["demo"])  # captured: no terminal
    assert done.returncode == 2
    assert done.stderr.startswith("tui-echo demo: error: the demo's monitor needs a terminal")
    assert done.stderr.count("\n") == 1


def test_the_cast_ends_at_end_of_file_on_its_stdin() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # connections wait in the backlog: enough here
        port = listener.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "tui_echo.demo.cast", str(port)], stdin=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdin is not None and process.stderr is not None
        time.sleep(0.5)  # let it start and connect; it must end whenever the pipe closes
        process.stdin.close()
        assert process.wait(TIMEOUT) == 0, process.stderr.read()
        process.stderr.close()


# ---- the cast's parts, each against a real server --------------------------------------------------


def disconnects(recorder_events: list[object], who: bytes) -> list[DisconnectReason]:
    """Why the connections whose data starts with ``who`` ended."""
    ids = {e.client_id for e in recorder_events if isinstance(e, DataReceived) and e.data.startswith(who)}
    return [e.reason for e in recorder_events if isinstance(e, ClientDisconnected) and e.client_id in ids]


@pytest.mark.trio
async def test_dave_goes_quiet_and_is_cut_off_by_the_idle_timeout_then_comes_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    # trio's clock jumps whenever every task waits: the cast's pauses and the server's timeouts, exactly
    pace = cast.Pace(speed=10)  # says two things in 0.2 s, comes back 0.3-0.6 s after being cut off
    async with running_server(idle_timeout=0.5) as running, trio.open_nursery() as nursery:
        nursery.start_soon(cast.quiet, running.port, pace)
        events = running.recorder.events
        await running.recorder.wait_for(lambda: len(disconnects(events, b"dave: ")) >= 2)
        assert disconnects(events, b"dave: ") == [DisconnectReason.IDLE_TIMEOUT] * 2
        said = [e.data for e in events if isinstance(e, DataReceived)]
        assert said[:2] == [b"dave: hi all, dave here\n", b"dave: brb, grabbing a coffee\n"]
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_frank_never_reads_and_is_cut_off_by_the_write_timeout(autojump_clock: trio.abc.Clock) -> None:
    # trio's clock jumps whenever every task waits: the cast's pauses and the server's timeouts, exactly
    pace = cast.Pace(speed=10)  # a 64 KiB part every 50 ms
    async with running_server(write_timeout=0.5) as running, trio.open_nursery() as nursery:
        nursery.start_soon(cast.never_reads, running.port, pace)
        events = running.recorder.events
        await running.recorder.wait_for(lambda: disconnects(events, b"frank: "))
        assert disconnects(events, b"frank: ") == [DisconnectReason.SLOW_READER]
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_the_chatters_take_turns_and_a_kicked_one_comes_back_saying_so() -> None:
    pace = cast.Pace(speed=20)
    async with running_server() as running, trio.open_nursery() as nursery:
        nursery.start_soon(cast.chat, running.port, pace)
        events = running.recorder.events

        def lines() -> list[bytes]:
            return [e.data for e in events if isinstance(e, DataReceived)]

        await running.recorder.wait_for(lambda: len(lines()) >= 3)
        assert lines()[:3] == [script.chat_line(*line) for line in script.CONVERSATION[:3]]
        alice = next(e.client_id for e in events if isinstance(e, DataReceived) and e.data.startswith(b"alice: "))
        running.server.apply(Kick(alice))
        await running.recorder.wait_for(lambda: script.comeback_line("alice") in lines())
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_the_demo_servers_rules_name_the_whole_cast_and_change_no_echo() -> None:
    pace = cast.Pace(speed=20)
    config = demo_config(0, 20)
    names = {"alice", "bob", "carol", "dave", "erin", "frank", "logger", "the sensor"}
    async with running_server(rules=config.rules, idle_timeout=config.idle_timeout) as running:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cast.perform, running.port, pace)

            def labels() -> set[str]:
                return {event.label for event in running.recorder.of(ClientLabelled)}

            await running.recorder.wait_for(lambda: labels() >= names)
            nursery.cancel_scope.cancel()
        assert labels() == names
        # Rules that only label never answer: every message is echoed as without them.
        assert not any(isinstance(event, DataAnswered) for event in running.recorder.events)


# ---- what the cast says --------------------------------------------------------------------------


def test_each_chatter_speaks_in_any_four_lines_in_a_row_so_none_meets_the_idle_timeout() -> None:
    speakers = [speaker for speaker, _ in script.CONVERSATION]
    lines = len(speakers)
    for start in range(lines):  # round and round: the window may wrap
        window = {speakers[(start + i) % lines] for i in range(script.LINES_BETWEEN_TURNS)}
        assert window == set(script.CHATTERS), (start, window)
    assert script.CHAT_PAUSE[1] * script.LINES_BETWEEN_TURNS < script.IDLE_TIMEOUT
    quietest = max(script.SENSOR_PERIOD, script.HEARTBEAT_PERIOD, script.VISIT[1], script.UPLOAD_PERIOD)
    assert quietest < script.IDLE_TIMEOUT


def test_a_sensor_frame_is_stx_reading_checksum_etx() -> None:
    for seq in itertools.islice(itertools.count(), 0, 70000, 997):
        frame = script.sensor_frame(seq)
        assert len(frame) == 9 and frame[0] == script.STX and frame[-1] == script.ETX
        sensor_id, number, centi, humidity = script._FRAME.unpack(frame[1:-2])
        assert (sensor_id, number) == (script.SENSOR_ID, seq % 65536)
        assert 1900 <= centi <= 2400 and 45 <= humidity <= 51
        checksum = 0
        for byte in frame[1:-2]:
            checksum ^= byte
        assert frame[-2] == checksum


def test_franks_parts_are_the_size_that_fills_the_buffers() -> None:
    part = script.upload_part(12)
    assert len(part) == script.UPLOAD_PART
    assert part.startswith(b"frank: uploading holiday-photos.zip, part 12 ") and part.endswith(b".\n")
