"""The command lines of what reads recordings: ``tui-echo export`` (and the entry of ``replay``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tui_echo.arguments import PROG, OneLineParser
from tui_echo.recording.reader import RecordingError, load


def export_main(arguments: Sequence[str]) -> int:
    parser = OneLineParser(
        prog=f"{PROG} export",
        description="Write a recording (tui-echo --record) as a pcapng capture for Wireshark or tshark: one TCP "
        "stream per client, with a synthesized handshake and the end it had (FIN, or RST for a reset).",
        epilog="Example: tui-echo export session.jsonl --pcapng session.pcapng; then wireshark session.pcapng, "
        "or tshark -r session.pcapng -q -z follow,tcp,ascii,0",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="The recording; its rotated parts too, any order.")
    parser.add_argument("--pcapng", required=True, metavar="OUT", help="The capture file to write.")
    args = parser.parse_args(arguments)
    from tui_echo.recording.pcapng import ExportError, write_pcapng  # scapy loads only here

    try:
        recording = load(args.files)
        packets = write_pcapng(recording, args.pcapng)
    except (RecordingError, ExportError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    lacking = f"; the recording lacks what its {len(recording.gaps)} gap record(s) say" if recording.gaps else ""
    print(f"{args.pcapng}: {len(recording.clients)} TCP streams, {packets} packets{lacking}", file=sys.stderr)
    return 0
