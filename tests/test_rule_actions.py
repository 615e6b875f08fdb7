"""Rule actions (``label = '{1}'``): written in a rules file or after ``;;`` on --rule, carried out by the server."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tui_echo.server.config import Framing, Mode
from tui_echo.server.events import ClientLabelled
from tui_echo.server.rules import Rule, RuleError, compile_rule, load_rules_file, parse_rule_option

from .helpers import TIMEOUT, connect, receive_exactly, running_server

HELLO = r"^hello, i'm (\w+)"


def test_the_command_line_and_a_file_write_the_same_rule(tmp_path: Path) -> None:
    option = parse_rule_option(HELLO + r" => hi {1}\n ;; label={1}", 1, 1)
    path = tmp_path / "rules.toml"
    path.write_text(f"[[rule]]\nmatch = '''{HELLO}'''\nreply = 'hi {{1}}\\n'\nlabel = '{{1}}'\n")
    (from_file,) = load_rules_file(str(path), 1)
    assert option.actions == from_file.actions == (("label", "{1}"),)
    assert (option.match, option.reply) == (from_file.match, from_file.reply) == (HELLO, r"hi {1}\n")
    # Only " ;; NAME=" starts an action: another ";;" stays in the reply.
    plain = parse_rule_option("x => a ;; b;;c", 1, 1)
    assert (plain.reply, plain.actions) == ("a ;; b;;c", ())
    assert compile_rule(1, "r", "(x)", "y", actions={"label": "{client}:{1}"}).actions == (("label", "{client}:{1}"),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (r"(\w+) => hi ;; colour=red", "--rule 1: unknown action 'colour' (actions: label, fault)"),
        (r"(\w+) => hi ;; label={2}", "--rule 1: bad label '{2}': unknown placeholder {2}"),
        (r"(\w+) => hi ;; label={1} ;; label={0}", "--rule 1: label is given twice"),
        (r"(\w+) => hi ;; label={", "--rule 1: bad label '{'"),
    ],
)
def test_a_bad_action_is_one_line_naming_the_rule(text: str, problem: str) -> None:
    with pytest.raises(RuleError) as raised:
        parse_rule_option(text, 1, 1)
    assert str(raised.value).startswith(problem) and "\n" not in str(raised.value)


def test_a_bad_action_in_a_file_names_the_rule_and_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[[rule]]\nmatch = 'x'\nreply = 'y'\nlabel = 3\n")
    with pytest.raises(RuleError, match="rule 1: label must be a string"):
        load_rules_file(str(path), 1)
    path.write_text("[[rule]]\nmatch = 'x'\nreply = 'y'\ncolour = 'red'\n")
    with pytest.raises(RuleError, match="unknown key 'colour' \\(a rule has match, reply, once, label, fault\\)"):
        load_rules_file(str(path), 1)


async def heard(client: trio.SocketStream, line: bytes) -> None:
    """Read until ``line`` (chat also says who joined and left)."""
    got = b""
    with trio.fail_after(TIMEOUT):
        while line not in got:
            data = await client.receive_some(4096)
            assert data, got
            got += data


def hello_rule() -> Rule:
    return parse_rule_option(HELLO + r" => hi {1}\n ;; label={1}", 1, 1)


@pytest.mark.trio
@pytest.mark.parametrize("mode", [Mode.ECHO, Mode.CHAT])
async def test_a_rule_labels_its_client_and_relabels_it_when_it_reconnects_and_says_hello(mode: Mode) -> None:
    async with running_server(framing=Framing.LINE, mode=mode, rules=(hello_rule(),)) as run:
        client = await connect(run.port)
        await client.send_all(b"hello, i'm alice\n")
        await heard(client, b"hi alice\n")
        with trio.fail_after(TIMEOUT):
            while [state.label for state in run.server.clients()] != ["alice"]:
                await trio.sleep(0.01)
        await client.send_all(b"hello, i'm alice\n")  # the same label: no second event
        await heard(client, b"hi alice\n")
        await client.aclose()
        again = await connect(run.port)  # a new connection starts without a label
        with trio.fail_after(TIMEOUT):
            while [state.label for state in run.server.clients()] != [""]:
                await trio.sleep(0.01)
        await again.send_all(b"hello, i'm alice\n")
        await heard(again, b"hi alice\n")
        await again.send_all(b"hello, i'm bob\n")
        await heard(again, b"hi bob\n")
        await run.recorder.wait_for(lambda: len(run.recorder.of(ClientLabelled)) == 3)
        labelled = [(e.client_id, e.label, e.rule) for e in run.recorder.of(ClientLabelled)]
        assert labelled == [(1, "alice", 1), (2, "alice", 1), (2, "bob", 1)]
        (hits,) = run.server.rules()
        assert hits.actions == (("label", "{1}"),)
        assert hits.cells(0)[4] == HELLO + r" => hi {1}\n ;; label={1}"
        await again.aclose()


@pytest.mark.trio
async def test_a_label_from_a_client_is_cut_to_the_bound_and_kept_as_text() -> None:
    rule = parse_rule_option(r"^name (.*) => ok\n ;; label={1}", 1, 1)
    async with running_server(framing=Framing.LINE, rules=(rule,)) as run:
        client = await connect(run.port)
        await client.send_all(b"name \x1b[2J" + b"x" * 500 + b"\n")
        assert await receive_exactly(client, 3) == b"ok\n"
        with trio.fail_after(TIMEOUT):
            while not any(state.label for state in run.server.clients()):
                await trio.sleep(0.01)
        (state,) = run.server.clients()
        assert state.label == ("\x1b[2J" + "x" * 500)[:64]
        await client.aclose()


def test_a_file_rule_may_leave_out_the_reply_when_it_acts_but_not_both(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[[rule]]\nmatch = '^(\\w+): '\nlabel = '{1}'\n")
    (rule,) = load_rules_file(str(path), 1)
    assert (rule.reply, rule.actions, rule.text) == (None, (("label", "{1}"),), r"^(\w+):  => (echo) ;; label={1}")
    path.write_text("[[rule]]\nmatch = 'x'\n")
    with pytest.raises(RuleError, match="rule 1: a rule needs a reply, an action \\(label, fault\\), or both"):
        load_rules_file(str(path), 1)


@pytest.mark.trio
async def test_a_rule_without_a_reply_echoes_and_labels() -> None:
    rule = compile_rule(1, "r", r"^(\w+): ", None, actions={"label": "{1}"})
    async with running_server(framing=Framing.LINE, rules=(rule,)) as run:
        client = await connect(run.port)
        await client.send_all(b"alice: hi\nnot a name line\n")
        assert await receive_exactly(client, 26) == b"alice: hi\nnot a name line\n"
        await run.recorder.wait_for(lambda: run.recorder.of(ClientLabelled))
        assert [(e.label, e.rule) for e in run.recorder.of(ClientLabelled)] == [("alice", 1)]
        assert run.server.totals().rule_hits == (1,)
        await client.aclose()
