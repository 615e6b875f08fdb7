"""``tui-echo load --pattern chat``: every connection talks at once through a ``--mode chat`` server.

Each connection says numbered lines, ``S Q abcd…\\n`` (S its number, Q the
line's number, padded to the line size), and the server passes each line to
every other client as ``<#ID> S Q abcd…\\n``. Every connection checks every
line it hears: the text is what connection S said as its line Q, S's lines
come in order, and always under the same ``<#ID>``. A gap in S's numbers is a
delivery the server dropped (counted as missed). The server's own lines
(joins, leaves, the operator's) are counted apart.

Closed loop: a connection has ``pipeline`` lines out, and says the next one
when a line has reached every other connection. All connections live in
this one process, which is how it knows; so the chat pattern runs in one
worker. A line's latency is from when it was said until the last of the
others heard it; the headline is deliveries (lines heard) per second.

The clock, as for the echo, starts once every connection is served: the
connections open; the server takes each into the chat (a join notice names
each one's address, and a connection that hears anything is in); each says
its first line; once every first line has reached all the others, the
measured window starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array

from tui_echo.load.engine import LOWEST_US, Connection, LoadSpec, Progress, Run, WorkerResult, finish, measure
from tui_echo.load.engine import open_connections
from tui_echo.text import printable

ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
MAX_LINE_BYTES = 72 * 1024  # the server cuts a chat line at 64 KiB and adds its <#ID> prefix: longer is not chat
SWEEP_SECONDS = 1.0  # how often lines that never reached everyone are looked for
SHOWN_BYTES = 60  # of a line that is wrong, in its error
# A chat server tells the first client of the second one's join at once: a server that says nothing at all
# for this long once every connection is open is not a chat server (an echo server says nothing to the silent).
SILENCE_SECONDS = 5.0


def letters(count: int) -> bytes:
    """``abcd…``, ``count`` bytes long (none if ``count`` is not above 0)."""
    return (ALPHABET * (count // len(ALPHABET) + 1))[: max(0, count)]


class _Chat:
    """What the connections of one run share: who is in, whose first lines have gone round, the line texts."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.size = len(run.spec.message)  # bytes of a line, its newline included
        self.talkers: list[_Talker | None] = [None] * (run.spec.first_connection + run.spec.connections)
        self.by_port: dict[int, _Talker] = {}  # our side's port: what the server's join notice names
        self.early_ports: set[int] = set()  # joins heard before that connection's own connection_made
        self.expected = run.spec.connections  # connections that opened (known once all have tried)
        self.live = 0  # connections open and not failed: the others a new line must reach
        self.joined = 0
        self.all_joined = asyncio.Event()
        self.heard_any = asyncio.Event()
        self.first_lines = 0  # connections whose first line reached every other one
        self.all_first = asyncio.Event()
        self._fills: dict[int, bytes] = {}

    def talker(self, number: int, run: Run) -> _Talker:
        talker = _Talker(number, run, self)
        self.talkers[number] = talker
        return talker

    def text(self, number: int, line: int) -> bytes:
        """Connection ``number``'s line ``line``, without its newline."""
        head = b"%d %d " % (number, line)
        fill = self._fills.get(len(head))
        if fill is None:
            fill = self._fills[len(head)] = letters(self.size - 1 - len(head))
        return head + fill

    def opened(self, talkers: list[_Talker]) -> None:
        self.expected = len(talkers)
        self._check(self.joined, self.all_joined)
        self._check(self.first_lines, self.all_first)

    def one_joined(self) -> None:
        self.joined += 1
        self._check(self.joined, self.all_joined)

    def one_first_line(self) -> None:
        self.first_lines += 1
        self._check(self.first_lines, self.all_first)

    def _check(self, count: int, event: asyncio.Event) -> None:
        if count >= self.expected:
            event.set()

    def sweep(self, older_than: float) -> None:
        """Give up on lines said more than ``older_than`` seconds ago: who has not heard them missed them."""
        limit = time.perf_counter_ns() - int(older_than * 1e9)
        for talker in self.talkers:
            if talker is not None:
                talker.give_up(limit)


class _Talker(Connection):
    """One chat connection: says numbered lines and checks every line it hears."""

    RECEIVED = "bytes heard"

    def __init__(self, number: int, run: Run, chat: _Chat) -> None:
        super().__init__(number, run)
        self.chat = chat
        self.partial = b""
        self.said = 0  # the number of its last line
        self.out: dict[int, list[int]] = {}  # its lines still on their way: number -> [said at (ns), still to hear it]
        # The last line heard from each connection, by its number: 4 bytes a connection (4 MB for 1000 in all).
        self.heard = array("I", bytes(4 * len(chat.talkers)))
        self.tag: bytes | None = None  # the server's <#ID for this connection's lines
        self.in_chat = False  # connected, and (over TLS) the server is trusted
        self.joined = False
        self.first_line_done = False

    def start(self) -> None:
        chat = self.chat
        self.in_chat = True
        chat.live += 1
        port = int(self.transport.get_extra_info("sockname")[1]) if self.transport is not None else 0
        chat.by_port[port] = self
        if port in chat.early_ports:
            self.join()

    def join(self) -> None:
        if not self.joined:
            self.joined = True
            self.chat.one_joined()

    def say(self) -> None:
        chat = self.chat
        others = chat.live - 1
        if others <= 0 or self.transport is None:
            return
        self.said += 1
        self.out[self.said] = [time.perf_counter_ns(), others]
        line = chat.text(self.number, self.said) + b"\n"
        self.transport.write(line)
        self.sent += len(line)

    def data_received(self, data: bytes) -> None:
        if self.failed:
            return
        if not self.joined:
            self.join()
            self.chat.heard_any.set()
        buffer = self.partial + data if self.partial else data
        lines = buffer.split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) > MAX_LINE_BYTES:
            self.wrong(self.partial, "a line longer than the server's bound")
            return
        self.received += len(buffer) - len(self.partial)
        for line in lines:
            if line.startswith(b"<#"):
                self.hear(line)
            else:
                self.notice(line)
            if self.failed:
                return

    def hear(self, line: bytes) -> None:
        """One line of another connection's, as the server passed it on."""
        chat = self.chat
        tag, _, body = line.partition(b"> ")
        fields = body.split(b" ", 2)
        try:
            number, said = int(fields[0]), int(fields[1])
            talker = chat.talkers[number] if number > 0 else None
        except (ValueError, IndexError):
            talker = None
        if talker is None or talker is self or body != chat.text(number, said):
            self.wrong(line, "a line no other connection said")
            return
        if talker.tag != tag:
            if talker.tag is not None:
                self.wrong(line, f"connection #{number}'s lines came as {printable(talker.tag.decode())}> before")
                return
            talker.tag = tag
        last = self.heard[number]
        if not last < said <= talker.said:
            self.wrong(line, f"after its line {last}" if said <= last else "before it was said")
            return
        self.heard[number] = said
        run = self.run
        if said > last + 1:  # the server dropped what came between (a full queue), and counted it
            run.result.missed += said - last - 1
            for lost in range(last + 1, said):
                talker.reached(lost)
        if run.measuring:
            run.result.messages += 1
            run.progress.messages += 1
        talker.reached(said)

    def notice(self, line: bytes) -> None:
        """A line of the server's own: a join (which says who is in the chat), a leave, the operator's."""
        chat = self.chat
        if line.startswith(b"* #") and b" joined from " in line:
            try:
                port = int(line.rpartition(b":")[2])
            except ValueError:
                port = -1
            talker = chat.by_port.get(port)
            if talker is not None:
                talker.join()
            else:
                chat.early_ports.add(port)
        elif not line.startswith((b"* ", b"<operator>")):
            self.wrong(line, "neither a chat line nor the server's")
            return
        self.run.result.notices += 1

    def wrong(self, line: bytes, why: str) -> None:
        shown = printable(line[:SHOWN_BYTES].decode("utf-8", "replace"))
        self.fail(f"connection #{self.number}: heard {why}: {shown!r}", mismatch=True)

    def reached(self, line: int) -> None:
        """One more of the others has heard (or will never hear) this connection's line."""
        entry = self.out.get(line)
        if entry is None:
            return  # given up on already
        entry[1] -= 1
        if entry[1] <= 0:
            del self.out[line]
            self.done(entry[0])

    def done(self, said_at: int, *, heard: bool = True) -> None:
        run = self.run
        if run.measuring and heard:
            run.result.histogram.record_value(max((time.perf_counter_ns() - said_at) // 1000, LOWEST_US))
            run.result.lines += 1
        if not self.first_line_done:
            self.first_line_done = True
            run.result.first_echoes += heard  # its first line reached all the others (not given up on)
            self.chat.one_first_line()
        if not (run.stopping or self.failed or self.closed):
            self.say()

    def give_up(self, said_before: int) -> None:
        for line, (said_at, unheard) in list(self.out.items()):
            if said_at < said_before:
                del self.out[line]
                self.run.result.missed += unheard
                self.run.result.error(
                    f"connection #{self.number}: its line {line} never reached {unheard} of the others"
                )
                self.done(said_at, heard=False)

    def lost(self) -> None:
        """Gone mid-run: nobody waits for it to join or to say its first line, nor for it to hear lines."""
        chat = self.chat
        if self.run.stopping or not self.in_chat:
            return
        chat.live -= 1
        self.join()
        if not self.first_line_done:
            self.first_line_done = True
            chat.one_first_line()
        for talker in chat.talkers:
            if talker is None or talker is self:
                continue
            for line in [n for n in talker.out if n > self.heard[talker.number]]:
                talker.reached(line)


async def run_chat(spec: LoadSpec, progress: Progress, first_echo_limit: float = 30.0) -> WorkerResult:
    """Open the connections, wait until all are in the chat and every first line went round, then measure."""
    run = Run(spec, progress, first_echo_limit)
    chat = _Chat(run)
    talkers = await open_connections(run, chat.talker)
    chat.opened(talkers)
    sweeper = None
    try:
        if len(talkers) >= 2:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(chat.heard_any.wait(), SILENCE_SECONDS)
                await asyncio.wait_for(chat.all_joined.wait(), first_echo_limit)
            for talker in talkers:
                if not talker.joined and not talker.failed:
                    why = (
                        f"the server did not take it into a chat within {first_echo_limit:g} s"
                        if chat.heard_any.is_set()
                        else f"the server said nothing to any connection for {SILENCE_SECONDS:g} s"
                    )
                    talker.fail(f"connection #{talker.number}: {why} (is it running --mode chat?)")
            if all(talker.failed for talker in talkers):
                return run.result
            for talker in talkers:
                for _ in range(spec.pipeline):
                    if not talker.failed:
                        talker.say()
            try:
                await asyncio.wait_for(chat.all_first.wait(), first_echo_limit)
            except TimeoutError:
                chat.sweep(0.0)  # first lines that are not round by now never will be

            async def sweep() -> None:
                while True:
                    await asyncio.sleep(SWEEP_SECONDS)
                    chat.sweep(first_echo_limit)

            sweeper = asyncio.create_task(sweep())
            await measure(run)
        elif talkers:
            talkers[0].fail("a chat needs two connections at least")
    finally:
        await finish(run, talkers, sweeper)
    return run.result


def run_chat_worker(spec: LoadSpec, progress: Progress, first_echo_limit: float = 30.0) -> WorkerResult:
    return asyncio.run(run_chat(spec, progress, first_echo_limit))
