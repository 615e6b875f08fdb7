"""The PROXY protocol header (HAProxy's, versions 1 and 2): a pure, bounded parser.

A proxy in front of the server (HAProxy ``send-proxy``/``send-proxy-v2``,
nginx ``proxy_protocol on``) starts each connection with one header that
names the client it relays. ``parse`` reads it from the bytes received so far:
a ``ProxyHeader`` once complete (with its length, so that not one byte of the
client's own data is taken), None while more may come, ``BadProxyHeader`` as
soon as the bytes cannot begin a valid header. No trio: ``admission.py``
does the reading.

Hand-written rather than the ``proxy-protocol`` package (judged: its parser
has no length bound on a v1 line, raises ``struct.error``, ``ValueError`` and
``UnicodeDecodeError`` besides its own errors on bad input, and accepts ports
such as ``+80`` and ``080``); the spec's grammar is small and strict, and
this one refuses anything else (see tests/test_proxy_header.py, fuzzed).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from tui_echo.net import Peer

V1_PREFIX = b"PROXY "
V1_MAX_BYTES = 107  # the spec's bound on a v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED_BYTES = 16
# A v2 header carries addresses and TLVs (HAProxy: unique id, SSL details, ...). Past this many bytes in
# all it is refused, which bounds what a connection still reading its header can cost.
MAX_HEADER_BYTES = 1024
_V2_INET = struct.Struct("!4s4sHH")
_V2_INET6 = struct.Struct("!16s16sHH")
_V2_LOCAL, _V2_PROXY = 0x20, 0x21  # version 2 and the command
_V2_TCP4, _V2_TCP6, _V2_UNSPEC = 0x11, 0x21, 0x00  # family and transport


class BadProxyHeader(ValueError):
    """The bytes cannot be (the start of) a valid PROXY header; the message says why, for the log."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    length: int  # bytes of the header: the client's own data starts after these
    source: Peer | None  # the real client; None for a v2 LOCAL (the proxy's own health check) or UNKNOWN
    version: int


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None if ``data`` is a valid start that needs more bytes.

    Raises BadProxyHeader as soon as no continuation could make it valid.
    """
    if data[:1] == b"P":
        return _parse_v1(data)
    if data[:1] == b"\r":
        return _parse_v2(data)
    if not data:
        return None
    raise BadProxyHeader("no PROXY header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    if not data.startswith(V1_PREFIX[: len(data)]):
        raise BadProxyHeader("no PROXY header")
    end = data.find(b"\r\n", 0, V1_MAX_BYTES)
    if end < 0:
        if len(data) >= V1_MAX_BYTES:
            raise BadProxyHeader(f"PROXY v1 line longer than {V1_MAX_BYTES} bytes")
        if b"\n" in data or b"\r" in data[:-1]:
            raise BadProxyHeader("PROXY v1 line broken by a stray CR or LF")
        return None
    words = data[len(V1_PREFIX) : end].split(b" ")
    if words[0] == b"UNKNOWN":  # the spec: whatever follows UNKNOWN is ignored
        return ProxyHeader(end + 2, None, 1)
    if len(words) != 5 or words[0] not in (b"TCP4", b"TCP6"):
        raise BadProxyHeader("PROXY v1 line is not TCP4/TCP6 source destination source-port destination-port")
    family, source, destination, source_port, destination_port = words
    version = 4 if family == b"TCP4" else 6
    host = _v1_address(source, version)
    _v1_address(destination, version)
    port = _v1_port(source_port)
    _v1_port(destination_port)
    return ProxyHeader(end + 2, (host, port), 1)


def _v1_address(text: bytes, version: int) -> str:
    try:
        address = ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise BadProxyHeader("PROXY v1 line with a bad address") from None
    if address.version != version:
        raise BadProxyHeader(f"PROXY v1 line with an address that is not IPv{version}")
    return str(address)


def _v1_port(text: bytes) -> int:
    # The spec: decimal, no leading zero, 0..65535 (int() would also take "+80", " 80", "0_80", "080").
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[:1] == b"0") or len(text) > 5:
        raise BadProxyHeader("PROXY v1 line with a bad port")
    port = int(text)
    if port > 65535:
        raise BadProxyHeader("PROXY v1 line with a bad port")
    return port


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if not data.startswith(V2_SIGNATURE[: len(data)]):
        raise BadProxyHeader("no PROXY header")
    if len(data) < V2_FIXED_BYTES:
        return None
    command, family, size = data[12], data[13], int.from_bytes(data[14:16], "big")
    if command not in (_V2_LOCAL, _V2_PROXY):
        raise BadProxyHeader(f"PROXY v2 header with an unknown version or command 0x{command:02x}")
    length = V2_FIXED_BYTES + size
    if length > MAX_HEADER_BYTES:
        raise BadProxyHeader(f"PROXY v2 header of {length} bytes, more than {MAX_HEADER_BYTES}")
    if len(data) < length:
        return None
    if command == _V2_LOCAL:
        return ProxyHeader(length, None, 2)
    body = data[V2_FIXED_BYTES:length]
    if family == _V2_TCP4 and size >= _V2_INET.size:
        source, _, port, _ = _V2_INET.unpack_from(body)
        return ProxyHeader(length, (str(ipaddress.IPv4Address(source)), port), 2)
    if family == _V2_TCP6 and size >= _V2_INET6.size:
        source, _, port, _ = _V2_INET6.unpack_from(body)
        host = ipaddress.IPv6Address(source)
        # An IPv4 client of a dual-stack proxy: plain IPv4, as the server names every peer.
        return ProxyHeader(length, (str(host.ipv4_mapped or host), port), 2)
    if family == _V2_UNSPEC:
        return ProxyHeader(length, None, 2)  # the spec: use the connection's own address
    raise BadProxyHeader(f"PROXY v2 header for family 0x{family:02x} (not TCP over IPv4/IPv6), or too short")
