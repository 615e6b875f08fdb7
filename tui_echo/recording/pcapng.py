"""``tui-echo export FILE --pcapng OUT``: a recording as a capture Wireshark opens, one TCP stream per client.

Each client gets a synthesized handshake (SYN, SYN-ACK, ACK) at its connect
time, its bytes both ways as segments whose sequence and acknowledgement
numbers grow with the payload (each segment acknowledged, so that no analysis
sees a lost or unacknowledged one), and the end it had: FIN both ways, the
closing side first, or RST for a reset. Times and addresses are the
recording's; each listening address is an interface of its own.

scapy writes the pcapng (``PcapNgWriter``: one interface block per
``sniffed_on``); it is an extra (``pip install 'tui-echo[pcap]'``), imported
only here.
"""

from __future__ import annotations

import heapq
import ipaddress
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tui_echo.net import format_address
from tui_echo.recording.reader import ClientStream, Recording
from tui_echo.server.events import DisconnectReason

SEGMENT_BYTES = 16 * 1024  # payload per synthesized segment: well inside the advertised window
WINDOW = 65535
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
# Ends where the server closed first (FIN from the server); a client that closed or reset ends it otherwise.
SERVER_CLOSES = {
    DisconnectReason.KICKED,
    DisconnectReason.IDLE_TIMEOUT,
    DisconnectReason.SLOW_READER,
    DisconnectReason.SERVER_SHUTDOWN,
    DisconnectReason.BANNED,
}


class ExportError(Exception):
    """What a user can fix (no scapy, an unwritable OUT): one line."""


@dataclass(frozen=True, slots=True)
class Segment:
    at: float
    from_client: bool
    flags: str
    seq: int
    ack: int
    payload: bytes = b""


def segments(stream: ClientStream) -> Iterator[Segment]:
    """One client's TCP conversation, in order, with times that never go back."""
    client_seq = zlib.crc32(b"client %d" % stream.client_id)  # deterministic initial sequence numbers
    server_seq = zlib.crc32(b"server %d" % stream.client_id)
    at = stream.connected_at
    yield Segment(at, True, "S", client_seq, 0)
    yield Segment(at, False, "SA", server_seq, client_seq + 1)
    client_seq += 1
    server_seq += 1
    yield Segment(at, True, "A", client_seq, server_seq)
    for moved_at, incoming, data in stream.moved:
        at = max(at, moved_at)
        for start in range(0, len(data), SEGMENT_BYTES):
            part = data[start : start + SEGMENT_BYTES]
            if incoming:
                yield Segment(at, True, "PA", client_seq, server_seq, part)
                client_seq += len(part)
                yield Segment(at, False, "A", server_seq, client_seq)
            else:
                yield Segment(at, False, "PA", server_seq, client_seq, part)
                server_seq += len(part)
                yield Segment(at, True, "A", client_seq, server_seq)
    ended = stream.ended
    if ended is None:  # the recording stopped before the client did
        return
    at = max(at, ended.at)
    if stream.reset:
        yield Segment(at, True, "RA", client_seq, server_seq)
        return
    client_first = ended.reason not in SERVER_CLOSES
    first_seq, second_seq = (client_seq, server_seq) if client_first else (server_seq, client_seq)
    yield Segment(at, client_first, "FA", first_seq, second_seq)
    yield Segment(at, not client_first, "FA", second_seq, first_seq + 1)
    yield Segment(at, client_first, "A", first_seq + 1, second_seq + 1)


def write_pcapng(recording: Recording, out: str) -> int:
    """Write ``recording`` to ``out``; returns how many packets. Raises ExportError."""
    try:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether
        from scapy.utils import PcapNgWriter
    except ImportError:
        raise ExportError("export needs scapy: pip install 'tui-echo[pcap]'") from None

    def built(stream: ClientStream, segment: Segment) -> Any:
        server = stream.server
        ip = IPv6 if ipaddress.ip_address(server[0]).version == 6 else IP
        source, target = (stream.peer, server) if segment.from_client else (server, stream.peer)
        macs = (CLIENT_MAC, SERVER_MAC) if segment.from_client else (SERVER_MAC, CLIENT_MAC)
        packet = (
            Ether(src=macs[0], dst=macs[1])
            / ip(src=source[0], dst=target[0])
            / TCP(
                sport=source[1],
                dport=target[1],
                flags=segment.flags,
                seq=segment.seq % (1 << 32),
                ack=segment.ack % (1 << 32) if "A" in segment.flags else 0,
                window=WINDOW,
            )
        )
        if segment.payload:
            packet = packet / segment.payload
        packet.time = segment.at
        packet.sniffed_on = format_address(server)  # one interface per listening address
        return packet

    def keyed(order: int, stream: ClientStream) -> Iterator[tuple[float, int, int, ClientStream, Segment]]:
        for number, segment in enumerate(segments(stream)):
            yield segment.at, order, number, stream, segment

    # The streams' segments merged by time, one waiting per stream: memory is the recording's, not the capture's.
    streams = sorted(recording.clients.values(), key=lambda s: s.connected_at)
    merged = heapq.merge(*(keyed(order, stream) for order, stream in enumerate(streams)), key=lambda item: item[:3])
    try:
        writer = PcapNgWriter(out)
    except OSError as exc:
        raise ExportError(f"{out}: {exc.strerror or exc}") from None
    packets = 0
    with writer:
        for _at, _order, _number, stream, segment in merged:
            writer.write(built(stream, segment))
            packets += 1
    return packets
