"""``--workers N``: real worker processes on one port, one merged log, consoles that see one server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_echo.control.paths import worker_socket_path
from tui_echo.headless.fleet import RESTART_ID_GAP, Fleet
from tui_echo.client_keys import worker_of
from tui_echo.server.config import ServerConfig, WorkerSlot
from tui_echo.server.events import (
    ClientConnected,
    ClientDisconnected,
    DataReceived,
    DisconnectReason,
    ServerListening,
    ServerStopped,
    ServerTotals,
    sum_totals,
)

from .helpers import TIMEOUT
from .process import HeadlessProcess, process_gone, run_cli

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="--workers needs SO_REUSEPORT (Linux)")


# ---- the pure parts ---------------------------------------------------------------------------


def test_worker_ids_interleave_and_name_their_worker() -> None:
    for count in (1, 2, 3, 8):
        for index in range(1, count + 1):
            slot = WorkerSlot(index, count, index)
            ids = [slot.first_id + k * slot.count for k in range(50)]
            assert all(worker_of(client_id, count) == index for client_id in ids)
    with pytest.raises(ValueError):
        WorkerSlot(3, 2, 3)
    with pytest.raises(ValueError):
        WorkerSlot(1, 2, 2)  # an id of worker 2


def test_a_worker_socket_is_named_after_the_servers() -> None:
    assert worker_socket_path(Path("/run/t/12354.sock"), 2) == Path("/run/t/12354.w2.sock")
    assert worker_socket_path(Path("/srv/ctl"), 1) == Path("/srv/ctl.w1")


def _totals(**counts: int) -> ServerTotals:
    base = dict(
        clients_total=0,
        clients_now=0,
        clients_peak=0,
        refused_total=0,
        messages_in=0,
        bytes_in=0,
        bytes_out=0,
        events_skipped=0,
    )
    return ServerTotals(**{**base, **counts})  # type: ignore[arg-type]


def test_totals_of_parts_are_summed() -> None:
    one = _totals(clients_total=3, messages_in=10, clients_peak=2)
    two = _totals(clients_total=4, messages_in=5, clients_peak=3)
    whole = sum_totals([one, two])
    assert (whole.clients_total, whole.messages_in, whole.clients_peak) == (7, 15, 5)
    assert sum_totals([]).clients_total == 0


def test_a_dead_workers_clients_are_reported_gone_with_their_last_counts() -> None:
    fleet = Fleet(2, ServerConfig(port=0, max_clients=10))
    peer = ("127.0.0.1", 5000)
    listening = ServerListening(addresses=(peer,), at=1.0, config=ServerConfig(port=0, max_clients=5), control="w1")
    shown = fleet.take(1, listening)
    assert isinstance(shown, ServerListening) and shown.config.max_clients == 10 and shown.control == ""
    assert fleet.take(2, listening) is None  # said once for the server
    fleet.take(2, ClientConnected(client_id=2, peer=peer, at=1.0))
    fleet.take(2, ClientConnected(client_id=4, peer=peer, at=1.0))
    fleet.take(
        2, DataReceived(client_id=4, data=b"x", size=1, at=2.0, messages=1, messages_in=7, bytes_in=9, bytes_out=9)
    )
    fleet.take(
        2,
        ClientDisconnected(
            client_id=2,
            peer=peer,
            at=2.0,
            reason=DisconnectReason.CLOSED_BY_PEER,
            connected_at=1.0,
            messages_in=1,
            bytes_in=1,
            bytes_out=1,
        ),
    )
    gone = fleet.died(2, 3.0, "worker 2 was killed by SIGKILL")
    assert [(g.client_id, g.messages_in, g.reason, g.error) for g in gone] == [
        (4, 7, DisconnectReason.ERROR, "worker 2 was killed by SIGKILL")
    ]
    assert fleet.next_first_id(2) == 4 + 2 * RESTART_ID_GAP and worker_of(fleet.next_first_id(2), 2) == 2
    assert fleet.next_first_id(1) == 1
    assert fleet.take(1, ServerStopped(at=4.0, totals=_totals(clients_total=5, messages_in=50))) is None
    totals = fleet.stopped(5.0, skipped=3).totals
    assert (totals.clients_total, totals.messages_in, totals.events_skipped) == (7, 58, 3)


def test_a_worker_sends_its_parent_what_the_log_can_show_and_a_busy_clients_latest_totals() -> None:
    import json as json_module

    from tui_echo.headless.fleet import WireLog

    log = WireLog(per_client=5, overall=20)
    peer = ("127.0.0.1", 5000)
    sent = log.handle(ClientConnected(client_id=1, peer=peer, at=10.0))
    for n in range(1, 101):  # 100 messages in 0.1 s: 5 lines' worth, the rest folded
        sent += log.handle(
            DataReceived(
                client_id=1, data=b"x", size=1, at=10.0 + n / 1000, messages=1, messages_in=n, bytes_in=n, bytes_out=n
            )
        )
    records = [json_module.loads(line) for line in sent]
    assert [r["event"] for r in records] == ["connected"] + ["data"] * 5
    latest = [json_module.loads(line) for line in log.tick(11.0)]
    assert [(r["event"], r["messages_in"]) for r in latest] == [("data", 100)]  # the summary's exact totals
    assert log.tick(12.0) == []
    log.handle(
        DataReceived(client_id=1, data=b"x", size=1, at=10.2, messages=1, messages_in=101, bytes_in=101, bytes_out=101)
    )
    gone = log.handle(
        ClientDisconnected(
            client_id=1,
            peer=peer,
            at=10.3,
            reason=DisconnectReason.CLOSED_BY_PEER,
            connected_at=10.0,
            messages_in=101,
            bytes_in=101,
            bytes_out=101,
        )
    )
    assert [json_module.loads(line)["event"] for line in gone] == ["disconnected"]
    assert log.tick(13.0) == []  # nothing left behind for a client that left


# ---- real processes ---------------------------------------------------------------------------


def _workers_server(tmp_path: os.PathLike[str], *args: str) -> HeadlessProcess:
    server = HeadlessProcess("--workers", "2", "--control", str(tmp_path) + "/ctl.sock", *args)
    server.wait_for_text("2 workers, each with its own clients")
    return server


@pytest.fixture
def server(tmp_path: os.PathLike[str]) -> Iterator[HeadlessProcess]:
    process = _workers_server(tmp_path)
    try:
        yield process
    finally:
        process.close()


def _ids_connected(server: HeadlessProcess, count: int) -> list[int]:
    ids = []
    while len(ids) < count:
        line = server.wait_for(lambda text: " connected (" in text)
        match = re.search(r"#(\d+) ", line)
        assert match
        ids.append(int(match.group(1)))
    return ids


def _connect_to_both(server: HeadlessProcess, least: int = 6) -> tuple[list[socket.socket], list[int]]:
    """At least ``least`` clients, one at a time, until each worker holds some (the kernel picks a worker
    by a hash of the addresses); each echoed once. Returns the sockets and their ids, in order."""
    clients: list[socket.socket] = []
    ids: list[int] = []
    while len(clients) < least or {worker_of(client_id, 2) for client_id in ids} != {1, 2}:
        assert len(clients) < 200, f"every connection went to one worker: {ids}"
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        clients.append(sock)
        sock.sendall(b"hi\n")
        assert sock.recv(16) == b"hi\n"
        ids += _ids_connected(server, 1)
    return clients, ids


def test_two_workers_serve_one_port_and_ctl_lists_every_client_once(server: HeadlessProcess) -> None:
    clients, ids = _connect_to_both(server)
    try:
        assert len(set(ids)) == len(ids)
        listed = run_cli(["ctl", str(server.port), "clients", "--json"])
        assert listed.returncode == 0, listed.stderr
        records = json.loads(listed.stdout)
        assert sorted(record["client"] for record in records) == sorted(ids)
        assert all(record["worker"] == worker_of(record["client"], 2) for record in records)
        table = run_cli(["ctl", str(server.port), "clients"])
        assert table.stdout.splitlines()[0].split()[:2] == ["WORKER", "ID"]
        assert len(table.stdout.splitlines()) == len(ids) + 1
        # ctl faults has the same WORKER column.
        second = next(client_id for client_id in ids if worker_of(client_id, 2) == 2)
        assert run_cli(["ctl", str(server.port), "fault", str(second), "latency=1ms"]).returncode == 0
        faults = run_cli(["ctl", str(server.port), "faults"]).stdout.splitlines()
        assert faults[0].split()[:2] == ["WORKER", "ID"] and faults[1].split()[:2] == ["2", f"#{second}"], faults
        listing = run_cli(["list", "--json"])
        rows = [json.loads(line) for line in listing.stdout.splitlines()]
        assert len(rows) == 1 and rows[0]["workers"] == 2 and rows[0]["clients_now"] == len(ids), rows
    finally:
        for sock in clients:
            sock.close()


def test_ctl_kick_reaches_the_worker_that_holds_the_client(server: HeadlessProcess) -> None:
    clients, ids = _connect_to_both(server)
    try:
        second = next(client_id for client_id in ids if worker_of(client_id, 2) == 2)
        victim = clients[ids.index(second)]
        kicked = run_cli(["ctl", str(server.port), "kick", str(second)])
        assert kicked.returncode == 0, kicked.stderr
        server.wait_for(lambda line: f"#{second} " in line and "disconnected: kicked" in line)
        # Exactly that client's socket was closed: the others still echo.
        closed = []
        for sock in clients:
            sock.settimeout(TIMEOUT)
            try:
                sock.sendall(b"x")
                if sock.recv(1) == b"":
                    closed.append(sock)
            except OSError:
                closed.append(sock)
        assert closed == [victim]
        unknown = run_cli(["ctl", str(server.port), "kick", str(second)])
        assert unknown.returncode == 1 and str(second) in unknown.stderr
    finally:
        for sock in clients:
            sock.close()


def _worker_pids(server: HeadlessProcess) -> dict[int, int]:
    line = next(text for text in server.lines if "2 workers, each with its own clients" in text)
    return {int(k): int(pid) for k, pid in re.findall(r"worker (\d) pid (\d+)", line)}


def test_a_killed_worker_is_restarted_and_its_clients_disconnects_are_reported(server: HeadlessProcess) -> None:
    clients, ids = _connect_to_both(server)
    on_two = [client_id for client_id in ids if worker_of(client_id, 2) == 2]
    try:
        os.kill(_worker_pids(server)[2], signal.SIGKILL)
        gone = set()
        while len(gone) < len(on_two):
            line = server.wait_for(lambda text: "was killed by SIGKILL" in text and "disconnected" in text)
            gone.add(int(re.search(r"#(\d+) ", line).group(1)))  # type: ignore[union-attr]
        assert gone == set(on_two)
        server.wait_for_text("cut off; restarting it")
        # The new worker 2 serves: connect until one lands on it, with an id past the old ones.
        deadline = time.monotonic() + TIMEOUT
        while True:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
            clients.append(sock)
            sock.sendall(b"again")
            assert sock.recv(16) == b"again"
            new_id = _ids_connected(server, 1)[0]
            if worker_of(new_id, 2) == 2:
                assert new_id > max(ids)
                break
            assert time.monotonic() < deadline, "no connection reached the restarted worker"
    finally:
        for sock in clients:
            sock.close()


def test_a_worker_that_does_not_stop_is_killed_at_the_parents_deadline(tmp_path: os.PathLike[str]) -> None:
    """The stop promise does not rest on the workers' speed: a worker that cannot stop (here SIGSTOPped)
    is killed at the parent's own deadline, the log says so, and the server still exits 0."""
    server = _workers_server(tmp_path)
    try:
        pids = _worker_pids(server)
        os.kill(pids[2], signal.SIGSTOP)
        code, _ = server.stop(signal.SIGTERM)
        assert code == 0, server.proc.stderr.read() if server.proc.stderr else ""
        rest = server.lines + server.rest()
        assert any(f"worker 2 (pid {pids[2]}) did not stop in time and was killed" in line for line in rest), rest
        assert all(process_gone(pid) for pid in pids.values())
    finally:
        for pid in _worker_pids(server).values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.close()


def test_sigterm_stops_every_worker_and_exits_0(tmp_path: os.PathLike[str]) -> None:
    server = _workers_server(tmp_path)
    try:
        pids = _worker_pids(server)
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        code, _ = server.stop(signal.SIGTERM)  # how fast depends on the machine: the next test shows the bound
        assert code == 0, server.proc.stderr.read() if server.proc.stderr else ""
        assert sock.recv(1) == b""  # its EOF
        assert all(process_gone(pid) for pid in pids.values())
        rest = server.rest()
        assert any("server stopped: 1 client," in line for line in rest), rest
        assert not list(Path(tmp_path).glob("ctl*.sock"))
    finally:
        server.close()


def test_max_clients_counts_every_workers_clients(tmp_path: Path) -> None:
    server = _workers_server(tmp_path, "--max-clients", "3")
    clients = []
    try:
        served = 0
        for _ in range(10):  # one at a time: each admission sees the others' counts
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
            clients.append(sock)
            sock.sendall(b"x")
            with contextlib.suppress(ConnectionResetError):  # refused: closed at once
                served += sock.recv(1) == b"x"
        assert served == 3
        refused = [line for line in server.lines if "refused" in line]
        server.wait_for(lambda line: "refused" in line and "server full" in line)
        listed = json.loads(run_cli(["ctl", str(server.port), "clients", "--json"]).stdout)
        assert len(listed) == 3, (listed, refused)
    finally:
        for sock in clients:
            sock.close()
        server.close()


def test_shared_counts_are_each_workers_own_slot() -> None:
    from tui_echo.server.siblings import Siblings, shared_counts

    fd = shared_counts(3)
    try:
        one, two, three = (Siblings(fd, 3, index) for index in (1, 2, 3))
        one.publish(5)
        two.publish(7)
        assert (one.others(), two.others(), three.others()) == (7, 5, 12)
        three.zero(2)
        assert one.others() == 0 and three.others() == 5
        for view in (one, two, three):
            view.close()
    finally:
        os.close(fd)


def test_workers_refuse_chat_with_one_line() -> None:
    done = run_cli(["--headless", "--port", "0", "--workers", "2", "--mode", "chat"])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--mode chat" in done.stderr and "one process" in done.stderr


# ---- the monitor, attached to every worker ------------------------------------------------------


@pytest.mark.tui
def test_the_monitor_shows_both_workers_clients_in_one_table_and_kicks_on_the_right_one(
    server: HeadlessProcess, tmp_path: Path
) -> None:
    import asyncio

    from tui_echo.monitor.attached import AttachedApp
    from tui_echo.monitor.fleet import FleetSource
    from tui_echo.monitor.widgets.stats_bar import StatsText
    from tui_echo.server.commands import Kick

    from .monitor_helpers import SIZE, Monitor, screen_text

    clients, ids = _connect_to_both(server)
    sockets = [worker_socket_path(tmp_path / "ctl.sock", index) for index in (1, 2)]

    async def main() -> None:
        app = AttachedApp(FleetSource.open(sockets), feed_lines=1000, handle_signals=False)
        async with app.run_test(size=SIZE) as pilot:
            monitor = Monitor(app, pilot, server.port)
            await monitor.until(lambda: sorted(monitor.live_ids()) == sorted(ids), "every client in the table")
            stats = app.query_one(StatsText)
            await monitor.until(
                lambda: stats.stats is not None and f"clients {len(ids)} now" in stats.render().plain, "the sum"
            )
            # Which worker holds each client: a worker column, as ctl clients has.
            assert {row.client_id: row.worker for row in monitor.table.rows} == {i: worker_of(i, 2) for i in ids}
            header = next(line for line in screen_text(app) if " peer " in line and " msgs " in line)
            assert re.search(r" id\W* worker +peer ", header), header  # "id▲": the table sorts by it
            shown = [line for line in screen_text(app) if "127.0.0.1:" in line]
            assert any(re.search(rf"#{second} +2 +127\.0\.0\.1:", line) for line in shown), shown
            app.main.command(Kick(second))
            await monitor.until(lambda: second not in monitor.live_ids(), "the kick on worker 2")
            await pilot.press("q")

    second = next(client_id for client_id in ids if worker_of(client_id, 2) == 2)
    try:
        asyncio.run(main())
        server.wait_for(lambda line: f"#{second} " in line and "disconnected: kicked" in line)
    finally:
        for sock in clients:
            sock.close()


def test_events_streams_every_workers_events_and_one_stopped_with_the_totals_summed(tmp_path: Path) -> None:
    import subprocess

    from .process import LineReader, tui_echo_command

    server = _workers_server(tmp_path)
    events = subprocess.Popen(
        [tui_echo_command(), "events", str(server.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert events.stdout is not None
        lines = LineReader(events.stdout)
        # Attached once a probe's connect shows (the console subscribes to every worker before it reads).
        probes = []
        while True:
            assert events.poll() is None, events.stderr.read() if events.stderr else ""
            probes.append(socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT))
            probe_id = _ids_connected(server, 1)[0]
            try:
                lines.wait_for(lambda line, probe_id=probe_id: f"#{probe_id} " in line, timeout=1.0)
                break
            except AssertionError:
                continue
        clients, ids = _connect_to_both(server)
        clients += probes
        seen: set[int] = set()  # the workers' lines interleave: ids come in any order
        while not set(ids) <= seen:
            line = lines.wait_for(lambda line: " connected (" in line)
            seen.add(int(line.split("#", 1)[1].split()[0]))
        for sock in clients:
            sock.close()
        code, _ = server.stop(signal.SIGTERM)
        assert code == 0
        stopped = lines.wait_for_text("server stopped")
        assert f"{len(ids) + len(probes)} clients" in stopped and f"{len(ids)} msgs" in stopped, stopped
        assert events.wait(TIMEOUT) == 0
        assert sum("server stopped" in line for line in lines.lines) == 1
    finally:
        events.kill()
        events.wait()
        for stream in (events.stdout, events.stderr):
            if stream:
                stream.close()
        server.close()


def test_the_fleet_sends_each_worker_the_commands_for_its_own_clients() -> None:
    from tui_echo.monitor.fleet import FleetSource
    from tui_echo.server.clients import ClientState
    from tui_echo.server.commands import Ban, BanAddress, Broadcast, ClientAction, ForClients, Kick, Label

    class Member:
        def __init__(self, ids: list[int]) -> None:
            self.states = [
                ClientState(client_id=i, peer=("127.0.0.1", i), connected_at=0, last_activity=0) for i in ids
            ]
            self.sent: list[object] = []

        def clients(self) -> list[ClientState]:
            return self.states

        def client_ids(self) -> set[int]:
            return {state.client_id for state in self.states}

        def client(self, client_id: int) -> ClientState | None:
            return next((state for state in self.states if state.client_id == client_id), None)

        def send(self, command: object) -> bool:
            self.sent.append(command)
            return True

    one, two = Member([1, 3, 5]), Member([2, 4])
    fleet = FleetSource([one, two])  # type: ignore[list-item]
    assert fleet.send(Kick(4)) and fleet.send(Label(3, "x"))
    assert fleet.send(ForClients(ClientAction.KICK, (1, 2, 4, 5)))
    assert fleet.send(Broadcast(b"hi"))
    assert one.sent == [Label(3, "x"), ForClients(ClientAction.KICK, (1, 5)), Broadcast(b"hi")]
    assert two.sent == [Kick(4), ForClients(ClientAction.KICK, (2, 4)), Broadcast(b"hi")]

    # A ban is the whole server's: the worker that holds the client bans it, the other its address.
    one.sent.clear()
    two.sent.clear()
    two.states[0].peer = ("10.0.0.2", 2)
    assert fleet.send(Ban(2))
    assert (one.sent, two.sent) == ([BanAddress("10.0.0.2")], [Ban(2)])
    one.sent.clear()
    two.sent.clear()
    assert fleet.send(ForClients(ClientAction.BAN, (1, 2)))
    assert one.sent == [ForClients(ClientAction.BAN, (1,)), BanAddress("10.0.0.2")]
    assert two.sent == [ForClients(ClientAction.BAN, (2,)), BanAddress("127.0.0.1")]
