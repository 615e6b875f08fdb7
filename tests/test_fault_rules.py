"""A reply rule's fault action: a matching message sets a fault on its client (toxiproxy's missing conditional
toxics), by the rule-actions mechanism that labels use."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tui_echo.server.config import Framing
from tui_echo.server.events import FaultChanged, ServerNotice
from tui_echo.server.rules import RuleError, load_rules_file, parse_rule_option

from .helpers import TIMEOUT, connect, receive_exactly, running_server
from .process import run_cli

pytestmark = pytest.mark.trio


async def test_a_matching_message_sets_a_fault_on_its_client_and_another_clears_it(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(
        "[[rule]]\nmatch = '^SLOW (\\d+)'\nreply = 'ok\\n'\nfault = 'latency={1}ms'\n\n"
        "[[rule]]\nmatch = '^FAST'\nreply = 'ok\\n'\nfault = 'clear'\n\n"
        "[[rule]]\nmatch = '^BAD'\nfault = 'latency=-{0}'\n"
    )
    rules = tuple(load_rules_file(str(rules_file), 1))
    async with running_server(rules=rules, framing=Framing.LINE) as run:
        client = await connect(run.port)
        other = await connect(run.port)
        await client.send_all(b"SLOW 300\n")
        assert await receive_exactly(client, 3) == b"ok\n"  # the reply to the matching message: before the fault
        await run.recorder.wait_for(lambda: run.recorder.of(FaultChanged))
        (changed,) = run.recorder.of(FaultChanged)
        assert (changed.client_id, changed.faults, changed.by) == (1, "latency=300ms", "rule 1")
        started = trio.current_time()
        await client.send_all(b"echo me\n")
        assert await receive_exactly(client, 8) == b"echo me\n"
        assert trio.current_time() - started >= 0.3 - 0.005
        await other.send_all(b"not me\n")  # only the client whose message matched
        assert await receive_exactly(other, 7) == b"not me\n"
        assert run.server._registry.connections[2].state.fault == ""
        await client.send_all(b"FAST\n")
        assert await receive_exactly(client, 3) == b"ok\n"
        await run.recorder.wait_for(lambda: len(run.recorder.of(FaultChanged)) == 2)
        assert run.recorder.of(FaultChanged)[1].faults == "" and run.server._registry.connections[1].state.fault == ""
        await client.send_all(b"BAD\n")  # rendered to a bad spec: a notice, and nothing changes
        assert await receive_exactly(client, 4) == b"BAD\n"
        await run.recorder.wait_for(
            lambda: any("fault for #1 not set" in n.message for n in run.recorder.of(ServerNotice))
        )
        assert len(run.recorder.of(FaultChanged)) == 2
        with trio.fail_after(TIMEOUT):
            await client.aclose()
            await other.aclose()


async def test_a_stall_from_a_rule_on_the_command_line_holds_the_client() -> None:
    rule = parse_rule_option("^hang => ok\\n ;; fault=stall=1s", 1, 1)
    assert rule.actions == (("fault", "stall=1s"),)
    async with running_server(rules=(rule,), framing=Framing.LINE) as run:
        client = await connect(run.port)
        await client.send_all(b"hang\n")
        assert await receive_exactly(client, 3) == b"ok\n"
        await run.recorder.wait_for(lambda: run.recorder.of(FaultChanged))
        started = trio.current_time()
        await client.send_all(b"after\n")
        assert await receive_exactly(client, 6) == b"after\n"
        assert trio.current_time() - started >= 0.9  # the stall ends 1 s after it was set, a moment before this
        await client.aclose()


async def test_a_bad_fault_in_a_rule_fails_at_start_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="unknown fault 'lag'"):
        parse_rule_option("^x => y ;; fault=lag=1s", 1, 1)
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text("[[rule]]\nmatch = 'x'\nfault = 'drop=2'\n")
    result = run_cli(["--headless", "--port", "0", "--rules", str(rules_file)])
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "drop=2: a chance is from 0 to 1" in result.stderr
