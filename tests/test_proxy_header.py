"""The PROXY header parser (v1 and v2): the spec's examples, the refusals, and fuzzed input (hypothesis).

Headers are built by an independent encoder here (the spec's layout, written out), not by the parser's
own constants, so that a wrong constant in the parser fails.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_echo.server.proxy_header import MAX_HEADER_BYTES, BadProxyHeader, ProxyHeader, parse

SIG = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"


def v1(family: str, source: str, destination: str, sport: int, dport: int) -> bytes:
    return f"PROXY {family} {source} {destination} {sport} {dport}\r\n".encode()


def v2(source: str, sport: int, *, local: bool = False, tlvs: bytes = b"") -> bytes:
    address = ipaddress.ip_address(source)
    if address.version == 4:
        body = address.packed + bytes([10, 0, 0, 1]) + struct.pack("!HH", sport, 443)
        family = 0x11
    else:
        body = address.packed + ipaddress.IPv6Address("::1").packed + struct.pack("!HH", sport, 443)
        family = 0x21
    if local:
        body, family = b"", 0x00
    body += tlvs
    return SIG + bytes([0x20 if local else 0x21, family]) + struct.pack("!H", len(body)) + body


def test_v1_tcp4_and_tcp6_give_the_source_and_the_exact_length() -> None:
    header = v1("TCP4", "192.0.2.7", "10.0.0.1", 51000, 443)
    assert parse(header + b"hello") == ProxyHeader(len(header), ("192.0.2.7", 51000), 1)
    header6 = v1("TCP6", "2001:db8::7", "::1", 1, 65535)
    assert parse(header6) == ProxyHeader(len(header6), ("2001:db8::7", 1), 1)
    assert parse(b"PROXY UNKNOWN\r\nrest") == ProxyHeader(15, None, 1)
    assert parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n") == ProxyHeader(35, None, 1)


def test_v2_proxy_and_local_give_the_source_and_the_exact_length() -> None:
    header = v2("192.0.2.7", 51000, tlvs=b"\x05\x00\x02ab")  # a unique-id TLV, skipped
    assert parse(header + b"hello") == ProxyHeader(len(header), ("192.0.2.7", 51000), 2)
    header6 = v2("2001:db8::7", 7)
    assert parse(header6) == ProxyHeader(len(header6), ("2001:db8::7", 7), 2)
    mapped = v2("::ffff:192.0.2.9", 9)
    assert parse(mapped) == ProxyHeader(len(mapped), ("192.0.2.9", 9), 2)  # plain IPv4, as every peer
    local = v2("127.0.0.1", 0, local=True)
    assert parse(local) == ProxyHeader(16, None, 2)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 9\r\n",  # int() would take these
        b"PROXY TCP4 1.2.3.4 5.6.7.8 080 9\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 9\r\n",
        b"PROXY TCP4 ::1 5.6.7.8 80 9\r\n",  # an IPv6 address in a TCP4 line
        b"PROXY TCP6 1.2.3.4 ::1 80 9\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 80 9\r\n",
        b"PROXY TCP4 \xff.2.3.4 5.6.7.8 80 9\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 80 9\r\n",
        b"PROXY TCP4 1.2.3.4\n",
        b"PROXY " + b"1" * 200,  # longer than the spec's 107 bytes, never ending
        SIG + b"\x22\x11\x00\x0c" + bytes(12),  # version 2, command 2
        SIG + b"\x31\x11\x00\x0c" + bytes(12),  # version 3
        SIG + b"\x21\x11\x00\x04" + bytes(4),  # TCP4 with 4 bytes of addresses
        SIG + b"\x21\x31\x00\xd8" + bytes(216),  # AF_UNIX
        SIG + b"\x21\x11\xff\xff",  # 64 KiB announced: past the bound at once
    ],
)
def test_malformed_headers_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(BadProxyHeader) as caught:
        parse(data)
    assert str(caught.value)


def test_a_header_split_anywhere_needs_more_until_its_last_byte() -> None:
    for header in (v1("TCP4", "192.0.2.7", "10.0.0.1", 5, 6), v2("2001:db8::7", 7, tlvs=b"\x05\x00\x01x")):
        for cut in range(len(header)):
            assert parse(header[:cut]) is None, cut
        assert parse(header) is not None


# ---- fuzzed ---------------------------------------------------------------------------------------

addresses4 = st.ip_addresses(v=4).map(str)
addresses6 = st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(str)
ports = st.integers(0, 65535)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_any_bytes_give_a_header_none_or_bad_proxy_header_only(data: bytes) -> None:
    try:
        header = parse(data)
    except BadProxyHeader:
        return
    if header is not None:
        assert 0 < header.length <= min(len(data), MAX_HEADER_BYTES)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.tuples(addresses4, addresses4, ports, ports).map(lambda t: (v1("TCP4", *t), t[0], t[2])),
        st.tuples(addresses6, addresses6, ports, ports).map(lambda t: (v1("TCP6", *t), t[0], t[2])),
        st.tuples(addresses4 | addresses6, ports, st.binary(max_size=200)).map(
            lambda t: (v2(t[0], t[1], tlvs=t[2]), t[0], t[1])
        ),
    ),
    rest=st.binary(max_size=50),
    damage=st.integers(0, 400),
    byte=st.integers(0, 255),
)
def test_valid_headers_parse_exactly_and_a_damaged_one_never_raises_anything_else(
    data: tuple[bytes, str, int], rest: bytes, damage: int, byte: int
) -> None:
    header, host, port = data
    assert parse(header + rest) == ProxyHeader(len(header), (host, port), 1 if header[:1] == b"P" else 2)
    damaged = bytearray(header + rest)
    damaged[damage % len(damaged)] = byte
    with contextlib.suppress(BadProxyHeader):  # anything else raised fails
        parse(bytes(damaged))
