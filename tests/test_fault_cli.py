"""Faults from the command line and from ``tui-echo ctl``, against the installed command and real sockets."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tui_echo.control import protocol

from .helpers import TIMEOUT
from .process import HeadlessProcess, run_cli
from .test_consoles import Lines, echo, server
from .test_consoles import started as started_processes

started = started_processes  # the fixture, under the name the tests ask for


def records(process: HeadlessProcess, kind: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in process.rest() if f'"event":"{kind}"' in line]


def test_fault_at_connect_and_from_ctl_set_list_and_clear(
    started: list[HeadlessProcess | Lines], tmp_path: Path
) -> None:
    path = tmp_path / "control.sock"
    headless = server(started, path, "--json", "--fault", "latency=300ms", "--fault-seed", "5")
    assert json.loads(headless.first_line)["fault"] == "latency=300ms"
    client = socket.create_connection(("127.0.0.1", headless.port), timeout=TIMEOUT)
    assert echo(client, b"slow\n") >= 0.3 - 0.005
    headless.wait_for(lambda line: '"event":"fault"' in line and '"by":"--fault"' in line)

    listed = run_cli(["ctl", str(path), "faults", "--json"])
    assert listed.returncode == 0, listed.stderr
    (record,) = json.loads(listed.stdout)
    assert (record["client"], record["fault"]) == (1, "latency=300ms")
    table = run_cli(["ctl", str(path), "faults"])
    assert table.stdout.splitlines()[1].split()[:3] == ["#1", f"127.0.0.1:{client.getsockname()[1]}", "latency=300ms"]

    assert run_cli(["ctl", str(path), "fault", "1", "clear"]).returncode == 0
    headless.wait_for(lambda line: '"event":"fault"' in line and '"faults":""' in line)
    assert "no client has faults" in run_cli(["ctl", str(path), "faults"]).stdout

    changed = run_cli(["ctl", str(path), "fault", "#1", "drop=1"])  # every echo dropped
    assert changed.returncode == 0, changed.stderr
    line = headless.wait_for(lambda line: '"faults":"drop=1.0"' in line)
    assert json.loads(line)["by"] == "console"
    client.sendall(b"gone\n")
    client.settimeout(0.5)
    with pytest.raises(TimeoutError):
        client.recv(100)

    bad = run_cli(["ctl", str(path), "fault", "1", "drop=2"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "a chance is from 0 to 1" in bad.stderr
    nobody = run_cli(["ctl", str(path), "fault", "9", "stall"])
    assert (nobody.returncode, nobody.stderr) == (1, "tui-echo ctl: error: no client #9 is connected\n")
    client.close()


def test_a_bad_fault_spec_on_the_command_line_is_one_line_and_exit_2() -> None:
    for spec, says in [
        ("lag=1s", "unknown fault 'lag'"),
        ("latency=5", "a time needs a unit"),
        ("latency=-5ms", "no negative values"),
        ("corrupt=1.5", "a chance is from 0 to 1"),
    ]:
        result = run_cli(["--headless", "--port", "0", "--fault", spec])
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and says in result.stderr and "Traceback" not in result.stderr


def test_a_bad_spec_sent_to_the_server_is_refused_and_nothing_changes() -> None:
    message = protocol.command_message(1, "fault", client=1, faults="latency=1ks")
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse_command(message)
    assert refused.value.code == "bad_value" and "a time needs a unit" in refused.value.message
    cleared = protocol.parse_command(protocol.command_message(2, "fault", client=1, faults="clear"))
    assert protocol.command_request(cleared.command()) == ("fault", {"client": 1, "faults": "clear"})
