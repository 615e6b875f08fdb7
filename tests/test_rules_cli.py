"""Reply rules as a user meets them: the flags, the log, ``ctl rules``, the control protocol and the monitor."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import time
from pathlib import Path

import pytest

from tui_echo.control.client import Connection
from tui_echo.monitor.remote import RemoteSource
from tui_echo.monitor.screens.rules import RulesScreen
from tui_echo.monitor.models.feed import Direction
from tui_echo.server.config import Framing
from tui_echo.server.rules import compile_rule, parse_rule_option

from .helpers import TIMEOUT
from .monitor_helpers import Monitor, run_monitor
from .process import HeadlessProcess, run_cli
from .test_cli import assert_user_error

PING = r"PING (\d+) => PONG {1}\n"


def ask(client: socket.socket, data: bytes, size: int) -> bytes:
    client.sendall(data)
    answer = b""
    while len(answer) < size:
        chunk = client.recv(size - len(answer))
        assert chunk, f"EOF after {answer!r}"
        answer += chunk
    return answer


def headless(*args: str) -> contextlib.closing[HeadlessProcess]:
    return contextlib.closing(HeadlessProcess(*args))


def test_a_headless_server_answers_by_its_rules_logs_the_first_hit_and_ctl_lists_the_hits(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with headless("--control", str(path), "--framing", "line", "--rule", PING) as server:
        _answers_logs_and_lists(server, path)


def _answers_logs_and_lists(server: HeadlessProcess, path: Path) -> None:
    assert "1 reply rule" in server.first_line
    client = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    assert ask(client, b"PING 42\n", 8) == b"PONG 42\n"
    assert ask(client, b"hello\n", 6) == b"hello\n"
    assert ask(client, b"PING 7\n", 7) == b"PONG 7\n"
    server.wait_for_text(r"notice: rule 1 (PING (\d+)) first hit, by #1: PING 42")

    table = run_cli(["ctl", str(path), "rules"])
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["RULE", "HITS", "LAST", "LAST", "MATCH", "MATCH", "=>", "REPLY"]
    assert row.split()[:3] == ["1", "2", "#1"]
    assert row.split()[-7:] == ["PING", "7", "PING", r"(\d+)", "=>", "PONG", r"{1}\n"]
    (record,) = json.loads(run_cli(["ctl", str(path), "rules", "--json"]).stdout)
    assert (record["rule"], record["hits"], record["last_match"], record["last_client"]) == (1, 2, "PING 7", 1)
    assert (record["match"], record["reply"], record["once"]) == (r"PING (\d+)", r"PONG {1}\n", False)

    client.close()
    assert server.stop(signal.SIGTERM)[0] == 0
    assert any("server stopped:" in line and line.endswith("rule hits 2") for line in server.rest())


def test_the_json_log_names_the_rules_and_counts_their_hits(tmp_path: Path) -> None:
    rules = tmp_path / "device.toml"
    rules.write_text("[[rule]]\nmatch = '\\x02(..)\\x03'\nreply = '\\x06{1}'\nonce = true\n")
    with headless("--json", "--no-control", "--rules", str(rules), "--rule", "x => y") as server:
        _json_log(server, f"{rules} rule 1")


def _json_log(server: HeadlessProcess, origin: str) -> None:
    listening = json.loads(server.first_line)
    assert listening["rules"] == [
        {"rule": 1, "origin": origin, "match": r"\x02(..)\x03", "reply": r"\x06{1}", "once": True, "actions": {}},
        {"rule": 2, "origin": "--rule 1", "match": "x", "reply": "y", "once": False, "actions": {}},
    ]
    client = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    assert ask(client, b"\x02ok\x03", 3) == b"\x06ok"
    assert ask(client, b"\x02ok\x03", 4) == b"\x02ok\x03"  # once per client
    client.close()
    server.wait_for_text('"event":"disconnected"')
    assert server.stop(signal.SIGTERM)[0] == 0
    stopped = json.loads(next(line for line in server.rest() if '"event":"stopped"' in line))
    assert stopped["rule_hits"] == [1, 0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--rule", r"PING (\d+ => x"], r"--rule 1: bad regex 'PING (\d+': missing )"),
        (["--rule", "a => b", "--rule", r"a => \q"], r"--rule 2: bad reply '\q': unknown escape \q"),
        (["--rule", "a => {who}"], "--rule 1: bad reply '{who}': unknown placeholder {who}"),
        (["--rule", "a=>b"], "--rule 1: expected 'REGEX => REPLY'"),
        (["--rules", "/nonexistent/rules.toml"], "--rules /nonexistent/rules.toml: cannot read it"),
    ],
)
def test_a_bad_rule_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    assert_user_error(run_cli(["--headless", "--port", "0", "--no-control", *args]), expected)


def test_an_invalid_rules_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[[rule]]\nmatch = 'a'\nreply = 'b {2}'\n")
    done = run_cli(["--headless", "--port", "0", "--rules", str(rules)])
    assert_user_error(done, f"{rules} rule 1: bad reply 'b {{2}}': unknown placeholder {{2}}")
    rules.write_text("[[rule]\n")
    assert_user_error(run_cli(["--headless", "--port", "0", "--rules", str(rules)]), "not valid TOML")


def test_a_console_gets_the_rules_in_its_snapshot_and_fresh_hits_in_counts(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with headless("--control", str(path), "--rule", "a => A") as server:
        _console(server, path)


def _console(server: HeadlessProcess, path: Path) -> None:
    snapshot = Connection.open(path, events=False)
    assert [(rule.number, rule.match, rule.hits) for rule in RemoteSource(snapshot).rules()] == [(1, "a", 0)]
    snapshot.close()
    watcher = Connection.open(path, events=True)
    client = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    assert ask(client, b"a", 1) == b"A"
    deadline = time.monotonic() + TIMEOUT
    watcher.sock.settimeout(TIMEOUT)
    while time.monotonic() < deadline:
        message = watcher.read()
        if message["type"] == "counts" and "rules" in message and message["rules"][0]["hits"] == 1:
            assert message["rules"][0]["last_match"] == "a"
            break
    else:
        raise AssertionError("no counts message with the rule's hit")
    watcher.close()
    client.close()


@pytest.mark.tui
def test_the_monitor_shows_each_rules_hits_and_last_match() -> None:
    async def test(monitor: Monitor) -> None:
        app = monitor.app
        client = await monitor.connect()
        client.writer.write(b"PING 42\n![bold]\x1b[2J\n![bold]\x1b[2J\n")
        expected = b"PONG 42\nok\n![bold]\x1b[2J\n"  # the second rule answers each client once
        assert await client.receive(len(expected)) == expected
        await monitor.until(lambda: app.server.totals().rule_hits == (1, 1), "the hits")
        await monitor.pilot.press("R")
        await monitor.until(lambda: isinstance(app.screen, RulesScreen), "the rules screen")
        screen = app.screen
        assert isinstance(screen, RulesScreen)
        ping, bang = screen.rows
        assert ping[:2] == ("1", "1") and ping[2].startswith("#1 ") and ping[3:] == ("PING 42", PING)
        assert bang[:2] == ("2", "1") and bang[3:] == ("![bold]\\x1b[2J", "^!(.*) => ok\\n  (once per client)")
        await monitor.pilot.press("escape")
        await monitor.until(lambda: not isinstance(app.screen, RulesScreen), "the screen to close")
        await monitor.palette("reply rules", "Reply rules")
        await monitor.until(lambda: isinstance(app.screen, RulesScreen), "the rules screen from the palette")
        first_hit = r"rule 1 (PING (\d+)) first hit, by #1: PING 42"
        await monitor.until(lambda: any(first_hit in e.text for e in monitor.feed.entries), "the first hit in the feed")
        # The chunk's line has a mark of its own: answered by a rule, not echoed; which rules, and their reply.
        (line,) = [e for e in monitor.feed.entries if e.direction is Direction.ANSWERED]
        assert (line.to, line.text) == ("rules 1, 2 (2 of 3 lines)", "PING 42\\n![bold]\\x1b[2J\\n![bold]\\x1b[2J\\n")
        assert (line.reply_text, line.reply_size) == ("PONG 42\\nok\\n", 11)
        shown = [text.split(" #1     ")[1] for text in monitor.feed.shown_lines() if "↩" in text]
        assert shown == [
            "↩ rules 1, 2 (2 of 3 lines)  PING 42\\n![bold]\\x1b[2J\\n![bold]\\x1b[2J\\n  reply PONG 42\\nok\\n"
        ]
        assert not any(e.direction is Direction.ECHOED for e in monitor.feed.entries)

    bang = compile_rule(2, "--rule 2", "^!(.*)", r"ok\n", once=True)
    run_monitor(test, framing=Framing.LINE, rules=(parse_rule_option(PING, 1, 1), bang))
