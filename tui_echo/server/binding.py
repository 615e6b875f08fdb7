"""Open the listening sockets, turning what a user can get wrong into one clear message."""

from __future__ import annotations

import errno
import socket
from typing import Any, TypeAlias

from tui_echo.net import format_address

# The kernel caps the backlog at net.core.somaxconn (4096 on current Linux); asking for
# the most, as trio does, means a burst of connects waits in the queue instead of failing.
BACKLOG = 0xFFFF


class ListenError(Exception):
    """The server cannot listen where asked; the message is meant for the user as is."""


SockAddr: TypeAlias = tuple[Any, ...]


def _resolve(host: str, port: int) -> list[tuple[int, SockAddr]]:
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    seen: set[tuple[int, SockAddr]] = set()
    unique: list[tuple[int, SockAddr]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if (family, sockaddr) not in seen:
            seen.add((family, sockaddr))
            unique.append((family, sockaddr))
    return unique


def _bind_one(
    family: int, sockaddr: SockAddr, backlog: int | None, dual_stack: bool, reuse_port: bool
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # Dual stack for the wildcard "::" alone (IPv4 clients arrive as ::ffff:a.b.c.d), as ncat
            # does; otherwise one socket per family, so "localhost" serves IPv4 and IPv6 side by side.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind(sockaddr)
        if backlog is not None:
            sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _explain(exc: OSError, where: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: address already in use (is another server running? try --port 0)"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need privileges; try a port above 1024)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: address not available on this machine"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def open_listeners(
    host: str, port: int, backlog: int | None = BACKLOG, *, reuse_port: bool = False
) -> list[socket.socket]:
    """Bind and listen on every address ``host`` resolves to; non-blocking sockets.

    With port 0 every address shares the port the first one got, so that a
    user reads one port. When the only address is the IPv6 wildcard ``::``, its
    socket also takes IPv4 connections (dual stack): ``--host ::`` means every
    interface of both families, while ``0.0.0.0`` stays IPv4 only. Raises
    ListenError with a user-facing message.

    ``reuse_port``: SO_REUSEPORT, so that each ``--workers`` process binds a socket of its own on
    the port and the kernel spreads connections over them. ``backlog`` None binds without
    listening: the parent of the workers holds the port so, and takes no connection itself.
    """
    sockets: list[socket.socket] = []
    resolved = _resolve(host, port)
    dual_stack = len(resolved) == 1 and resolved[0][0] == socket.AF_INET6 and resolved[0][1][0] == "::"
    try:
        for family, sockaddr in resolved:
            if sockets and port == 0:
                sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
            try:
                sockets.append(_bind_one(family, sockaddr, backlog, dual_stack, reuse_port))
            except OSError as exc:
                raise ListenError(_explain(exc, format_address(sockaddr[:2]))) from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
