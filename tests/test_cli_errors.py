"""Mistakes a user can make on any command: one clear line naming the command, exit 2, nothing on stdout."""

from __future__ import annotations

import pytest

from .process import run_cli


def one_line(args: list[str]) -> str:
    done = run_cli(args)
    assert (done.returncode, done.stdout) == (2, ""), done
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["ctl", "1234", "kick", "abc"],
            "tui-echo ctl kick: error: argument ID: expected a client id such as 3 or #3, got 'abc' "
            "(see tui-echo ctl kick --help)",
        ),
        (
            ["ctl", "1234", "send", "3", r"bad\q"],
            r"tui-echo ctl send: error: argument TEXT: unknown escape \q at column 4; use \n \r \t \0 \xNN or \\ "
            "(see tui-echo ctl send --help)",
        ),
        (
            ["ctl", "kick"],
            "tui-echo ctl kick: error: give a client ID or --filter EXPR, one of them (see tui-echo ctl kick --help)",
        ),
        (
            ["ctl", "1234", "broadcast", ""],
            "tui-echo ctl broadcast: error: argument TEXT: nothing to send (see tui-echo ctl broadcast --help)",
        ),
    ],
)
def test_a_ctl_command_names_itself_once(args: list[str], expected: str) -> None:
    # argparse named each ctl command after ctl's whole usage line, twice in every error
    assert one_line(args) == expected


@pytest.mark.parametrize(
    ("word", "guess"),
    [
        ("atach", "did you mean attach? "),
        ("lst", "did you mean list? "),
        ("evnts", "did you mean events? "),
        ("laod", "did you mean load? "),
        ("xyzzy", ""),
    ],
)
def test_a_misspelt_command_gets_the_commands_and_a_guess(word: str, guess: str) -> None:
    for args in ([word], ["--port", "0", word]):
        assert one_line(args) == (
            f"tui-echo: error: unknown command {word!r}: {guess}the commands are attach, list, events, ctl, web, "
            "demo, load, export, replay (see tui-echo --help)"
        )


def test_an_unknown_flag_is_still_an_unknown_flag() -> None:
    assert one_line(["--bogus"]) == "tui-echo: error: unrecognized arguments: --bogus (see tui-echo --help)"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["attach", "--feed-lines", "0"], "tui-echo attach: error: argument --feed-lines: expected a whole number"),
        (["attach", "--feed-lines", "many"], "tui-echo attach: error: argument --feed-lines: expected a whole number"),
        (["attach", "--all", "7001"], "tui-echo attach: error: --all attaches to every running server: give it no"),
        (["list", "extra"], "tui-echo list: error: unrecognized arguments: extra"),
        (["events", "--bogus"], "tui-echo events: error: unrecognized arguments: --bogus"),
        (["web", "--http-port", "70000"], "tui-echo web: error: argument --http-port: expected a whole number"),
        (["ctl", "1234", "reboot"], "tui-echo ctl: error: argument COMMAND: invalid choice: 'reboot'"),
        (["demo", "--bogus"], "tui-echo demo: error: unrecognized arguments: --bogus"),
        (["load"], "tui-echo load: error: the following arguments are required: [HOST:]PORT"),
    ],
)
def test_every_command_says_a_bad_argument_in_one_line(args: list[str], expected: str) -> None:
    assert one_line(args).startswith(expected)
