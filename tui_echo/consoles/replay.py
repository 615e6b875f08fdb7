"""``tui-echo replay FILE``: a recording in the monitor, or (``--headless``, ``--json``) as the log it made."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tui_echo.arguments import PROG, OneLineParser, seconds
from tui_echo.headless.log import EventLog, HumanFormat, JsonFormat
from tui_echo.recording.playback import Playback
from tui_echo.recording.reader import RecordingError
from tui_echo.server.config import DEFAULT_FEED_LINES


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=f"{PROG} replay",
        description="Play a recording (tui-echo --record FILE) in the monitor: the table, feed, stats and client "
        "screens as they were live. p pauses, ←/→ seek 10 s, [ ] change the speed; kick, ban and send are off.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="The recording; its rotated parts too, any order.")
    parser.add_argument("--speed", type=float, default=1.0, metavar="X", help="Play X times as fast (default 1).")
    parser.add_argument(
        "--from", dest="start", type=seconds, default=0.0, metavar="SECONDS", help="Start this far into it."
    )
    parser.add_argument("--to", dest="end", type=seconds, default=None, metavar="SECONDS", help="End this far into it.")
    parser.add_argument("--client", type=int, default=None, metavar="N", help="Only client #N's records.")
    parser.add_argument(
        "--headless", action="store_true", help="No monitor: print the log the server would have written, at once."
    )
    parser.add_argument("--json", action="store_true", help="With --headless: the log as JSON Lines.")
    return parser


def replay_main(arguments: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.json and not args.headless:
        parser.error("--json is for the headless log: add --headless")
    if args.speed <= 0:
        parser.error("--speed: expected a number above 0")
    try:
        playback = Playback(args.files, client=args.client, start=args.start, end=args.end)
    except (RecordingError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if args.headless:
        log_lines(playback, json_lines=args.json)
        return 0
    from tui_echo.monitor.replay import ReplayApp, ReplaySource
    from tui_echo.monitor.terminal import terminal_problem

    problem = terminal_problem()
    if problem:
        parser.error(f"the monitor needs a terminal, {problem}; use --headless to print the log")
    name = args.files[-1] if len(args.files) == 1 else f"{len(args.files)} files"
    app = ReplayApp(ReplaySource(playback, name, speed=args.speed), feed_lines=DEFAULT_FEED_LINES)
    app.run()
    return app.return_code or 0


def log_lines(playback: Playback, *, json_lines: bool) -> None:
    """The log as the server wrote it then (its pace of summaries on the recording's own clock)."""
    log = EventLog(JsonFormat() if json_lines else HumanFormat(), window_start=playback.span.start)
    write = sys.stdout.write
    for event in playback.advance(playback.span.end):
        for line in log.tick(event.at) + log.handle(event):
            write(line + "\n")
    for line in log.tick(playback.span.end + log.window_seconds):
        write(line + "\n")
