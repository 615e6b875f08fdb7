"""Reload without dropping anyone: the access-list files and the rules files re-read (ctl reload, SIGUSR1),
clients connected before it keep their connections and counts, a bad file changes nothing."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import pytest
import trio

from tui_echo.server.commands import Reload
from tui_echo.server.events import ClientDisconnected, DisconnectReason, RefusalReason, ServerNotice
from tui_echo.server.rules import load_rules_file

from .helpers import TIMEOUT, connect, connect_from, receive_exactly, receive_until_eof, running_server
from .process import HeadlessProcess, run_cli


def rules_file(path: Path, *rules: tuple[str, str]) -> Path:
    path.write_text("".join(f"[[rule]]\nmatch = '{match}'\nreply = '{reply}'\n" for match, reply in rules))
    return path


async def say(stream: trio.SocketStream, line: bytes, answer: bytes) -> None:
    await stream.send_all(line)
    assert await receive_exactly(stream, len(answer)) == answer


@pytest.mark.trio
async def test_a_changed_rule_answers_the_next_message_of_a_client_connected_before_and_hits_carry_over(
    tmp_path: Path,
) -> None:
    path = rules_file(tmp_path / "rules.toml", ("^ping", "pong\\n"), ("^time", "noon\\n"))
    async with running_server(rules=tuple(load_rules_file(str(path), 1)), rules_files=(str(path),)) as run:
        client = await connect(run.port)
        await say(client, b"ping\n", b"pong\n")
        await say(client, b"time\n", b"noon\n")
        rules_file(path, ("^ping", "PONG\\n"), ("^time", "noon\\n"), ("^hello", "hi\\n"))
        done = await run.server.command(Reload())
        assert done is not None and not done.error
        assert done.message == "reloaded: 0 allowed networks, 0 denied networks; 3 rules (2 new, 1 gone)"
        await say(client, b"ping\n", b"PONG\n")  # the same connection, the changed rule
        await say(client, b"hello\n", b"hi\n")
        rows = run.server.rules()
        assert [(r.match, r.reply, r.hits, r.new) for r in rows] == [
            ("^ping", "PONG\\n", 1, True),
            ("^time", "noon\\n", 1, False),  # unchanged: its hit carried over
            ("^hello", "hi\\n", 1, True),
        ]
        [state] = run.server.clients()
        assert (state.messages_in, state.bytes_in) == (4, 21)  # its counts went on
        # A broken file changes nothing: the rules answer as before, one notice says why.
        path.write_text("[[rule]]\nmatch = '('\nreply = 'x'\n")
        done = await run.server.command(Reload())
        assert done is not None and done.error
        assert done.error == f"reload failed, the settings in force stay: {path} rule 1: bad regex '(': " + (
            "missing ), unterminated subpattern at position 0"
        )
        await say(client, b"ping\n", b"PONG\n")
        await run.recorder.wait_for(lambda: any(n.message == done.error for n in run.recorder.of(ServerNotice)))
        assert [r.hits for r in run.server.rules()] == [2, 1, 1]
        await client.aclose()


@pytest.mark.trio
@pytest.mark.parametrize("keep_denied", [False, True])
async def test_a_reloaded_deny_file_refuses_new_connections_and_closes_or_keeps_clients_now_denied(
    tmp_path: Path, keep_denied: bool
) -> None:
    deny = tmp_path / "deny.txt"
    deny.write_text("# nobody yet\n\n")
    async with running_server(deny_files=(str(deny),), keep_denied=keep_denied) as run:
        doomed = await connect_from("127.0.0.2", run.port)
        other = await connect_from("127.0.0.3", run.port)
        await say(doomed, b"a", b"a")
        await say(other, b"b", b"b")
        deny.write_text("127.0.0.2  # that one\n")
        done = await run.server.command(Reload())
        assert done is not None and not done.error and "1 denied network" in done.message
        if keep_denied:
            assert "1 client now denied left connected" in done.message
            await say(doomed, b"still", b"still")
        else:
            assert "1 client now denied closed" in done.message
            assert await receive_until_eof(doomed) == b""
            await run.recorder.wait_for(lambda: run.recorder.of(ClientDisconnected))
            [gone] = run.recorder.of(ClientDisconnected)
            assert gone.reason is DisconnectReason.DENIED and gone.peer[0] == "127.0.0.2"
        await say(other, b"b", b"b")  # the others: untouched
        again = await connect_from("127.0.0.2", run.port)
        assert await receive_until_eof(again) == b""
        assert run.server.totals().refused_by_reason == {RefusalReason.DENIED: 1}
        deny.write_text("not-a-network\n")
        done = await run.server.command(Reload())
        assert done is not None and done.error
        assert done.error.endswith(
            f"{deny} line 1: expected an address or a CIDR network such as 10.0.0.0/8, got 'not-a-network'"
        )
        third = await connect_from("127.0.0.2", run.port)  # still denied: the old lists stay
        assert await receive_until_eof(third) == b""
        for stream in (doomed, other, again, third):
            await stream.aclose()


def test_ctl_reload_and_sigusr1_reload_a_running_server_and_sighup_still_stops_it(tmp_path: Path) -> None:
    rules = rules_file(tmp_path / "rules.toml", ("^ping", "pong\\n"))
    allow = tmp_path / "allow.txt"
    allow.write_text("127.0.0.1\n")
    control = tmp_path / "c.sock"
    server = HeadlessProcess("--rules", str(rules), "--allow-file", str(allow), "--control", str(control))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as client:
            client.sendall(b"ping\n")
            assert client.recv(100) == b"pong\n"
            rules_file(rules, ("^ping", "PONG\\n"))
            done = run_cli(["ctl", str(control), "reload"])
            assert (done.returncode, done.stderr) == (0, "")
            assert done.stdout == "reloaded: 1 allowed network, 0 denied networks; 1 rule (1 new, 1 gone)\n"
            client.sendall(b"ping\n")
            assert client.recv(100) == b"PONG\n"
            table = run_cli(["ctl", str(control), "rules"]).stdout
            assert "(new)" in table
            allow.write_text("10.0.0.0/8 oops\n")
            done = run_cli(["ctl", str(control), "reload"])
            assert done.returncode == 1 and done.stdout == ""
            assert done.stderr.startswith("tui-echo ctl: error: reload failed, the settings in force stay: ")
            assert len(done.stderr.splitlines()) == 1
            server.wait_for_text("reload failed, the settings in force stay")
            rules_file(rules, ("^ping", "again\\n"))
            allow.write_text("127.0.0.0/8\n")
            server.proc.send_signal(signal.SIGUSR1)
            server.wait_for_text("reloaded: 1 allowed network")
            client.sendall(b"ping\n")
            assert client.recv(100) == b"again\n"
            records = json.loads(run_cli(["ctl", str(control), "clients", "--json"]).stdout)
            assert [r["messages_in"] for r in records] == [3]
        code, _ = server.stop(signal.SIGHUP)  # SIGHUP keeps its meaning: stop
        assert code == 0
    finally:
        server.close()


def test_the_monitor_routes_sigusr1_to_a_reload() -> None:
    import asyncio
    import os

    from tui_echo.monitor import signals

    async def main() -> list[str]:
        calls: list[str] = []
        loop = asyncio.get_running_loop()
        remove = signals.install(
            lambda: calls.append("quit"),
            lambda: calls.append("hang up"),
            loop.call_soon,
            reload=lambda: calls.append("reload"),
        )
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(200):
                if calls:
                    break
                await asyncio.sleep(0.01)
        finally:
            remove()
        return calls

    assert asyncio.run(main()) == ["reload"]
