"""How a console names the clients of the servers it shows: one server, or several in one console. Pure.

Every server gives out client ids from 1, so two separate servers both have a
#1. A console that shows several (``tui-echo attach 7001 7002``) keys each
client by one integer that no other client of the console has, made from the
server's id and the server's place in the console, interleaved as a
``--workers`` server interleaves its workers' ids: with S servers, client #N
of server s (0-based) is key (N - 1)·S + s + 1. Everything in the console
that follows a client (the table, tags, the feed, a client's screen, the
commands it sends) holds the key; what a person reads and types is the
server's own id and the server's name: ``#12@7002``, so that ``tui-echo ctl
7002 kick 12`` agrees with the screen. With one server the key is the id.

A ``--workers`` server is one server here: its ids are already unique, and
``worker`` says which of its workers holds a client (worker K of N gives
out K, K+N, …).
"""

from __future__ import annotations

from dataclasses import dataclass


def worker_of(client_id: int, workers: int) -> int:
    """The worker (1..workers) that gave out ``client_id``."""
    return (client_id - 1) % workers + 1


@dataclass(frozen=True, slots=True)
class ClientKeys:
    """The servers of one console: their names (as the user named them: a port, a socket's name) and
    how many workers each has. The default is one server of one process: keys are ids."""

    names: tuple[str, ...] = ("",)
    workers: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        if not self.names or len(self.names) != len(self.workers):
            raise ValueError("one worker count per server")

    @property
    def several(self) -> bool:
        """Several separate servers: the table has a server column, labels name the server."""
        return len(self.names) > 1

    @property
    def has_workers(self) -> bool:
        """A server of several workers among them: the table has a worker column."""
        return any(count > 1 for count in self.workers)

    def key(self, server: int, client_id: int) -> int:
        """The console's key of client ``client_id`` of the ``server``-th server (0-based)."""
        return (client_id - 1) * len(self.names) + server + 1

    def server(self, key: int) -> int:
        """The place (0-based) of the server that holds the client of ``key``."""
        return (key - 1) % len(self.names)

    def number(self, key: int) -> int:
        """The id the client's own server gave it."""
        return (key - 1) // len(self.names) + 1

    def server_name(self, key: int) -> str:
        """The name of the client's server ("" with one server)."""
        return self.names[self.server(key)] if self.several else ""

    def worker(self, key: int) -> int | None:
        """The worker that holds the client, for a server of several workers; None otherwise."""
        workers = self.workers[self.server(key)]
        return worker_of(self.number(key), workers) if workers > 1 else None

    def label(self, key: int) -> str:
        """What a person reads: ``#12``, or ``#12@7002`` among several servers."""
        return f"#{self.number(key)}@{self.server_name(key)}" if self.several else f"#{key}"

    def place(self, name: str) -> int | None:
        """The place of the server named ``name``, None if no server of the console is."""
        return self.names.index(name) if name in self.names else None

    def keys_of(self, text: str) -> list[int] | None:
        """The keys a typed id names: ``12`` or ``#12``: client 12 of every server; ``#12@7002`` (or
        ``12@7002``): of that server alone. None if ``text`` is not an id (or names no server here)."""
        number, at, name = text.strip().removeprefix("#").partition("@")
        if not number.isascii() or not number.isdigit():
            return None
        client_id = int(number)
        if not at:
            return [self.key(server, client_id) for server in range(len(self.names))]
        place = self.place(name)
        return None if place is None else [self.key(place, client_id)]


ONE_SERVER = ClientKeys()  # one server of one process: a client's key is its id
