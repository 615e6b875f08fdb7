"""Peers and socket errors, as every part of tui-echo names them. Pure: imports nothing of the package.

A peer is ``(host, port)`` as the kernel reports it; its text form is
``host:port``, with brackets around an IPv6 host (``[::1]:5000``).
"""

from __future__ import annotations

from typing import TypeAlias

Peer: TypeAlias = tuple[str, int]


def format_address(address: Peer) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> Peer:
    """The peer that ``format_address`` wrote as ``text``; raises ValueError if it is not one."""
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"not a host:port address: {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def describe_error(exc: OSError) -> str:
    """A socket error as a person reads it, e.g. ``connection reset by peer``."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text[:1].lower()}{text[1:]}"
