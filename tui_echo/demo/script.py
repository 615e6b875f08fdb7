"""What the demo's cast says, and when: lines, frames and timings at speed 1. No trio, no Textual.

Every time here is in seconds at ``--speed 1``; the cast and the demo server divide them by the speed.
"""

from __future__ import annotations

import functools
import math
import operator
import struct

# The demo server's timeouts. Only dave (who goes quiet) and frank (who never reads) ever meet them:
# everybody else sends something at least every CHAT_PAUSE[1] * LINES_BETWEEN_TURNS seconds.
IDLE_TIMEOUT = 20.0
WRITE_TIMEOUT = 30.0

CHAT_PAUSE = (1.5, 3.5)  # between two lines of the conversation
LINES_BETWEEN_TURNS = 4  # each chatter speaks at least once in any four lines in a row
COME_BACK = (3.0, 6.0)  # a member cut off (kicked, timed out) reconnects after this long
QUIET_BEFORE_LEAVING = 2.0  # dave says two things, then nothing until the idle timeout cuts him off
VISIT = (4.0, 8.0)  # how long erin stays
AWAY = (6.0, 12.0)  # and how long she is away
SENSOR_PERIOD = 1.0
HEARTBEAT_PERIOD = 1.0  # the logger, when calm
FIRST_FLOOD = 6.0  # the logger replays a backlog at once, so that the first screen shows a burst
FLOOD_EVERY = 30.0
FLOOD_SECONDS = 3.0
FLOOD_RATE = 5000  # lines a second at most during a flood, whatever the speed: a good neighbour on a laptop
UPLOAD_PERIOD = 0.5
UPLOAD_PART = 64 * 1024  # frank's parts: about 2 MB fill the socket buffers on loopback in some 15 s
UPLOAD_RECEIVE_BUFFER = 1024  # frank's receive window: his unread echo fills it at once

CHATTERS = ("alice", "bob", "carol")

# The demo server's rules that name the cast (regex, label): the speaker of a "name: text" line, and
# the sensor by its frame (STX, then its id). They label and echo as usual; they never reply.
LABEL_RULES = (
    (r"^(\w{1,20}): ", "{1}"),
    (r"^\x02\x07", "the sensor"),
)

CONVERSATION: tuple[tuple[str, str], ...] = (
    ("alice", "did you see the kick last night?"),
    ("bob", "the free kick in the 89th minute? unreal"),
    ("carol", "I only caught the replay. was it really that good?"),
    ("alice", "top corner, the keeper never moved"),
    ("bob", "I still think the ref was wrong about the penalty though"),
    ("carol", "you always think the ref was wrong"),
    ("alice", "ha, she has a point"),
    ("bob", "fine. but the offside in the first half? come on"),
    ("carol", "ok, that one was offside by a mile"),
    ("alice", "anyone going to the match on saturday?"),
    ("bob", "I've got two tickets. carol?"),
    ("carol", "yes please! what time does it start?"),
    ("bob", "3 pm. meet at the station at 2?"),
    ("alice", "I'll be there too if I finish my assignment"),
    ("carol", "which assignment?"),
    ("alice", "the echo server: one thread per client, printing every message"),
    ("bob", "we did that last year. try it with 1000 clients and watch it crawl"),
    ("carol", "ours uses trio: one task per client, and a nursery holds them all"),
    ("alice", "so if one client stalls, the others carry on?"),
    ("carol", "exactly. and you can kick one without touching the rest"),
    ("bob", "speaking of kicks: saturday, 2 pm, the station. don't be late"),
    ("alice", "deal. who brings the snacks?"),
    ("carol", "not bob. last time he brought celery"),
    ("bob", "celery is a perfectly good snack"),
)

# dave's visits: what he says when he arrives, and just before he goes quiet
QUIET_VISITS = (
    ("hi all, dave here", "brb, grabbing a coffee"),
    ("back. did the server cut me off again?", "hold on, someone at the door"),
    ("sorry, back now", "brb, my tea is ready"),
)


def chat_line(speaker: str, text: str) -> bytes:
    return f"{speaker}: {text}\n".encode()


def comeback_line(speaker: str) -> bytes:
    """What a chatter says first after being cut off."""
    return chat_line(speaker, "sorry, got cut off. what did I miss?")


def heartbeat_line(n: int) -> bytes:
    return b"logger: heartbeat %d, all quiet\n" % n


def backlog_line(n: int) -> bytes:
    return b"logger: replaying backlog, entry %06d\n" % n


def upload_part(n: int) -> bytes:
    """One of frank's parts: a readable start, then filler up to UPLOAD_PART bytes."""
    head = b"frank: uploading holiday-photos.zip, part %d (I never read your echo) " % n
    return head + b"." * (UPLOAD_PART - len(head) - 1) + b"\n"


STX, ETX = 0x02, 0x03
SENSOR_ID = 7
_FRAME = struct.Struct(">BHhB")  # sensor id, sequence number, temperature in 1/100 degC, humidity in %


def sensor_frame(seq: int) -> bytes:
    """STX, the reading (big-endian), an XOR checksum of the reading, ETX: 9 bytes, for the hex view (x)."""
    temperature = round(2150 + 250 * math.sin(seq / 20))  # 19.0 to 24.0 degC, slowly
    humidity = 45 + seq % 7
    reading = _FRAME.pack(SENSOR_ID, seq % 65536, temperature, humidity)
    checksum = functools.reduce(operator.xor, reading, 0)
    return bytes([STX]) + reading + bytes([checksum, ETX])
