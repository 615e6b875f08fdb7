"""What a reload re-reads (``ctl PORT reload``, SIGUSR1): the access-list files and the reply-rule files.

Pure: files in, settings out, or one ``ReloadError`` line naming the file and what is wrong, so that a
bad file leaves the settings in force. The server applies what this returns (``EchoServer.reload``).
Inline ``--allow``, ``--deny`` and ``--rule`` stay as started and keep their places: the files'
networks are added to the inline ones, and the rules files' rules come before the inline rules, as at
the start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tui_echo.server.access import parse_network
from tui_echo.server.config import Network, ServerConfig
from tui_echo.server.rules import Rule, RuleError, load_rules_file

MAX_LIST_BYTES = 1 << 20  # an access-list file larger than this is refused (a bound on what a reload reads)


class ReloadError(ValueError):
    """A file cannot be read or is wrong; the message is one line for the log and ctl's answer."""


@dataclass(frozen=True, slots=True)
class Settings:
    allow: tuple[Network, ...]
    deny: tuple[Network, ...]
    rules: tuple[Rule, ...]


def read_networks(path: str) -> tuple[Network, ...]:
    """One address or CIDR network a line; ``#`` starts a comment; blank lines are skipped."""
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise ReloadError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_LIST_BYTES:
        raise ReloadError(f"{path}: larger than {MAX_LIST_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ReloadError(f"{path}: not UTF-8 text") from None
    networks = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            try:
                networks.append(parse_network(entry))
            except ValueError as exc:
                raise ReloadError(f"{path} line {number}: {exc}") from None
    return tuple(networks)


def read_settings(config: ServerConfig) -> Settings:
    """The access lists and the rules as the files say now, with the inline ones; raises ReloadError."""
    allow = config.allow + tuple(network for path in config.allow_files for network in read_networks(path))
    deny = config.deny + tuple(network for path in config.deny_files for network in read_networks(path))
    rules: list[Rule] = []
    try:
        for path in config.rules_files:
            rules += load_rules_file(path, len(rules) + 1)
    except RuleError as exc:
        raise ReloadError(str(exc)) from None
    # The inline rules, numbered after the files' (their number is their place in the order).
    inline = [rule for rule in config.rules if rule.inline]
    rules += [replace(rule, number=len(rules) + n) for n, rule in enumerate(inline, 1)]
    return Settings(allow, deny, tuple(rules))
