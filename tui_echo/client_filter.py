"""Filter expressions over clients: what ``/`` in the monitor and ``ctl clients --filter`` take. Pure.

``compile_filter(text)`` turns an expression into a predicate over any row
that has ``client_id``, ``peer``, ``status``, ``tls_version`` and ``label``
(a ``ClientState``, a monitor's table row), or raises ``FilterError`` with
one line. Terms, case-insensitive:

- ``#1234``: exactly that id;
- bare digits: a substring of the id, the port or the address;
- ``10.0.0.7``, ``10.0.0`` or ``10.0.0.``: the address, or an address that
  starts with those numbers; ``10.0.0.7:51234``, ``[::1]:5000``: the peer;
  ``:51234``: the port; ``10.0.0.0/24``, ``fe80::/10``: a network; ``::1``:
  an IPv6 address;
- ``tls``: any TLS client, ``plain``: any other, ``TLSv1.2``: that version;
- a word that starts the status (``kicked``, ``closing``, ``idle``): the
  status; any other text: a substring of the label (also tried for status
  words, so a client labelled "idle" is found too).

``a|b`` matches either; a leading ``!`` inverts the whole expression; and
``/…/`` (after an optional ``!``) is a regex, searched in the row's text
``#ID HOST:PORT STATUS TLS LABEL``. The predicate is built once: matching a
row makes no string of the row's fields except for the regex's text and the
digits' decimal forms.

A console of several servers (``client_keys.ClientKeys``) keys its rows by a
key, not the server's id: given its keys, ids are read as the servers give
them, ``#12@7002`` is that server's #12 alone, ``@7002`` every client of that
server, and the regex's text starts ``#ID@SERVER``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from tui_echo.client_keys import ClientKeys

MAX_FILTER_CHARS = 512  # an expression longer than this is refused
MAX_TERMS = 32  # alternatives in one expression

_DOTTED = re.compile(r"\d{1,3}(?:\.\d{0,3}){1,3}")  # 10.0  10.0.0.  10.0.0.7
_TLS_VERSION = re.compile(r"tlsv1(?:\.[0-3])?|sslv3", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w-]*")  # starts with a letter: a status word or a label


class FilterError(ValueError):
    """An expression that cannot be used; the message says why, in one line."""


class FilterRow(Protocol):
    """What a filter reads of a row (``ClientState`` and the monitor's table rows have it)."""

    @property
    def client_id(self) -> int: ...
    @property
    def peer(self) -> tuple[str, int]: ...
    @property
    def status(self) -> str: ...
    @property
    def tls_version(self) -> str | None: ...
    @property
    def label(self) -> str: ...


Row = TypeVar("Row", bound=FilterRow)
Predicate = Callable[[FilterRow], bool]


def _everything(row: FilterRow) -> bool:
    return True


class ClientFilter:
    """A compiled expression: call it on a row, or ``select`` rows. ``text`` is what was typed."""

    __slots__ = ("text", "_predicate", "everything")

    def __init__(self, text: str, predicate: Predicate, everything: bool = False) -> None:
        self.text = text
        self._predicate = predicate
        self.everything = everything  # an empty expression: every row matches

    def __call__(self, row: FilterRow) -> bool:
        return self._predicate(row)

    def select(self, rows: Iterable[Row]) -> Iterator[Row]:
        predicate = self._predicate
        return (row for row in rows if predicate(row))


def compile_filter(text: str, keys: ClientKeys | None = None) -> ClientFilter:
    """The filter ``text`` writes (see the module's doc); raises FilterError. ``keys``: the rows' ids
    are a console's keys over several servers (see the module's doc)."""
    several = keys if keys is not None and keys.several else None
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"a filter may be at most {MAX_FILTER_CHARS} characters long")
    expression = text.strip()
    invert = expression.startswith("!")
    if invert:
        expression = expression[1:].strip()
    if not expression:
        if invert:
            raise FilterError("! inverts a filter: write what to leave out after it, e.g. !kicked")
        return ClientFilter(text, _everything, everything=True)
    if len(expression) >= 2 and expression.startswith("/") and expression.endswith("/"):
        predicate = _regex(expression[1:-1], several)
    elif expression.startswith("/"):
        raise FilterError("a regex is written /…/: the closing / is missing")
    else:
        terms = [term.strip() for term in expression.split("|")]
        if len(terms) > MAX_TERMS:
            raise FilterError(f"at most {MAX_TERMS} alternatives (a|b|…) in one filter")
        if any(not term for term in terms):
            raise FilterError("an empty alternative: write a term on each side of |")
        predicate = _any_of([_term(term, several) for term in terms])
    if invert:
        inner = predicate

        def predicate(row: FilterRow) -> bool:
            return not inner(row)

    return ClientFilter(text, predicate)


def _any_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:  # the usual a|b: no loop
        first, second = predicates
        return lambda row: first(row) or second(row)

    return lambda row: any(predicate(row) for predicate in predicates)


def row_text(row: FilterRow, keys: ClientKeys | None = None) -> str:
    """What a regex is searched in: ``#ID HOST:PORT STATUS TLS LABEL`` (``#ID@SERVER`` over several)."""
    host, port = row.peer
    peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = f"#{row.client_id}" if keys is None else keys.label(row.client_id)
    return f"{name} {peer} {row.status} {row.tls_version or 'plain'} {row.label}"


def _regex(source: str, keys: ClientKeys | None) -> Predicate:
    if not source:
        raise FilterError("the regex // is empty")
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: not for a person at a prompt
            warnings.simplefilter("ignore")
            pattern = re.compile(source, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        raise FilterError(f"bad regex /{source}/: {exc}") from None
    search = pattern.search
    # The text is at most a few hundred characters (labels are bounded): that bounds a pattern's work.
    return lambda row: search(row_text(row, keys)) is not None


def _term(term: str, keys: ClientKeys | None) -> Predicate:
    lowered = term.lower()
    if keys is not None and "@" in term:
        return _on_server(term, keys)
    if term.startswith("#"):
        digits = term[1:]
        if not digits.isascii() or not digits.isdigit():
            raise FilterError(f"{term}: # is followed by a client id, e.g. #1234")
        wanted = int(digits)
        if keys is not None:
            number = keys.number
            return lambda row: number(row.client_id) == wanted
        return lambda row: row.client_id == wanted
    if term.isascii() and term.isdigit():
        return _digits(term, keys)
    if term.startswith(":") and term[1:].isascii() and term[1:].isdigit():
        port = int(term[1:])
        return lambda row: row.peer[1] == port
    if "/" in term:
        return _network(term)
    if lowered in ("tls", "plain"):
        want_tls = lowered == "tls"
        return lambda row: (row.tls_version is not None) is want_tls
    if _TLS_VERSION.fullmatch(term):
        return lambda row: row.tls_version is not None and row.tls_version.lower() == lowered
    if _DOTTED.fullmatch(term):
        return _dotted(term)
    peer = _peer(term)
    if peer is not None:
        return peer
    return _text(term)


def _on_server(term: str, keys: ClientKeys) -> Predicate:
    """``@7002``: every client of that server; ``#12@7002``: its #12."""
    number, _, name = term.partition("@")
    place = keys.place(name)
    if place is None:
        raise FilterError(f"{term}: no server here is named {name!r} (the server column's names)")
    if not number:
        server = keys.server
        return lambda row: server(row.client_id) == place
    wanted = keys.keys_of(term)
    if wanted is None:
        raise FilterError(f"{term}: write a client of one server as #1234@{name}")
    key = wanted[0]
    return lambda row: row.client_id == key


def _digits(term: str, keys: ClientKeys | None) -> Predicate:
    """A substring of the id, the port or the address."""

    def match(row: FilterRow) -> bool:
        host, port = row.peer
        return term in str(row.client_id) or term in str(port) or term in host

    if keys is None:
        return match
    number = keys.number

    def match_several(row: FilterRow) -> bool:
        host, port = row.peer
        return term in str(number(row.client_id)) or term in str(port) or term in host

    return match_several


def _dotted(term: str) -> Predicate:
    """``10.0.0.7``: that address, or one it starts (``10.0.0.70`` is not ``10.0.0.7``); ``10.0.0.``: a prefix."""
    exact = term.rstrip(".")
    prefix = term if term.endswith(".") else term + "."
    return lambda row: row.peer[0] == exact or row.peer[0].startswith(prefix)


def _peer(term: str) -> Predicate | None:
    """``host:port``, ``[v6]:port``, or a bare IPv6 address; None if ``term`` is none of these."""
    if term.startswith("[") and "]:" in term:
        host, _, port = term[1:].partition("]:")
    elif term.count(":") == 1:
        host, _, port = term.partition(":")
    else:
        host, port = term, ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    wanted = str(address)
    if not port:
        return lambda row: _canonical(row.peer[0]) == wanted
    if not port.isascii() or not port.isdigit():
        raise FilterError(f"{term}: the port must be a number")
    number = int(port)
    return lambda row: row.peer[1] == number and _canonical(row.peer[0]) == wanted


def _network(term: str) -> Predicate:
    try:
        network = ipaddress.ip_network(term, strict=False)
    except ValueError as exc:
        raise FilterError(f"{term}: not a network such as 10.0.0.0/24 ({exc})") from None
    version, first, last = network.version, int(network.network_address), int(network.broadcast_address)

    def match(row: FilterRow) -> bool:
        address = _address(row.peer[0])
        return address is not None and address[0] == version and first <= address[1] <= last

    return match


@functools.lru_cache(maxsize=65536)
def _address(host: str) -> tuple[int, int] | None:
    """A host's IP version and number, once per host (inet_pton: a tenth of ipaddress's cost)."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, host))
    except OSError:
        pass
    try:
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, host.partition("%")[0]))
    except OSError:
        return None
    if number >> 32 == 0xFFFF:  # ::ffff:a.b.c.d, an IPv4 client of a dual-stack listener
        return 4, number & 0xFFFFFFFF
    return 6, number


@functools.lru_cache(maxsize=65536)
def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.partition("%")[0]))
    except ValueError:
        return host.lower()


def _text(term: str) -> Predicate:
    """A status word (the status starts with it) or a substring of the label, case-insensitive.

    Statuses are lower case ("connected", "idle timeout", "error: …"), and most clients have no
    label: both are tested without a regex where they can be."""
    in_label = re.compile(re.escape(term), re.IGNORECASE).search
    if not _WORD.fullmatch(term):
        return lambda row: bool(row.label) and in_label(row.label) is not None
    word = term.lower()
    end = len(word)

    def match(row: FilterRow) -> bool:
        status = row.status
        if status.startswith(word) and (len(status) == end or status[end] in " :"):
            return True
        label = row.label
        return bool(label) and in_label(label) is not None

    return match
