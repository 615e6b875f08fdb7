"""A broadcast is one event, and a line a rule answered carries its reply and rule: in the JSON log,
the human log and the control protocol (both ways), and through a real control socket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_echo.control import protocol
from tui_echo.headless.log import EventLog, HumanFormat, JsonFormat
from tui_echo.server.events import ClientConnected, DataAnswered, DataBroadcast, ServerEvent
from tui_echo.times import parse_utc_time
from tui_echo.wire.events import decode_event, encode_event

from .control_helpers import controlled_server
from .helpers import connect, receive_exactly

AT = 1_764_050_400.0
BROADCAST = DataBroadcast(data=b"<operator> hi\x1b[2J\n", size=18, at=AT, recipients=2000)
ANSWERED = DataAnswered(
    client_id=3,
    data=b"\x02AB\x03",
    size=4,
    at=AT,
    messages=1,
    messages_in=7,
    bytes_in=28,
    bytes_out=28,
    answered=1,
    rules=(2,),
    reply=b"\x06AB\x03",
    reply_size=4,
)


def round_trip(event: ServerEvent) -> ServerEvent | None:
    message = json.loads(json.dumps(protocol.event_message(event, peer="127.0.0.1:5", clients_now=3)))
    return decode_event(message)


@pytest.mark.parametrize("event", [BROADCAST, ANSWERED], ids=["broadcast", "answered"])
def test_the_control_protocol_carries_them_whole(event: ServerEvent) -> None:
    assert round_trip(event) == event


def test_the_json_records() -> None:
    record = encode_event(BROADCAST)
    assert record == {
        "event": "broadcast",
        "time": "2025-11-25T06:00:00.000Z",
        "len": 18,
        "data": "<operator> hi\\x1b[2J\\n",  # escaped: inert
        "truncated": False,
        "recipients": 2000,
        "data_b64": "PG9wZXJhdG9yPiBoaRtbMkoK",  # exact
    }
    record = encode_event(ANSWERED, peer="127.0.0.1:5")
    assert (record["event"], record["data"], record["answered"], record["rules"]) == ("data", "\\x02AB\\x03", 1, [2])
    assert (record["reply"], record["reply_len"], record["reply_truncated"]) == ("\\x06AB\\x03", 4, False)
    assert record["reply_b64"] == "BkFCAw=="


def test_the_logs_say_one_line_each() -> None:
    human, as_json = EventLog(HumanFormat()), EventLog(JsonFormat())
    (line,) = human.handle(BROADCAST)
    assert line.endswith("operator broadcast 18 B to 2000 clients: <operator> hi\\x1b[2J\\n")
    assert json.loads(as_json.handle(BROADCAST)[0])["recipients"] == 2000
    human.handle(ClientConnected(client_id=3, peer=("127.0.0.1", 5), at=AT))
    line = human.handle(ANSWERED)[-1]  # after a summary of the six messages before it
    assert line.endswith("msg 7  answered by rule 2 (1 message) 4 B: \\x02AB\\x03 · reply 4 B: \\x06AB\\x03")


@pytest.mark.trio
async def test_a_console_gets_one_broadcast_event_and_no_sent_events(tmp_path: Path) -> None:
    async with controlled_server(tmp_path) as run:
        clients = [await connect(run.port) for _ in range(3)]
        console = await run.console()
        await console.read_snapshot()
        for client in clients:  # each one's connect may come before or after the snapshot: talk first
            await client.send_all(b"x")
            await receive_exactly(client, 1)
        assert (await console.command(1, "broadcast", data_b64=protocol.data_b64(b"to all\n")))["ok"]
        for client in clients:
            assert await receive_exactly(client, 7) == b"to all\n"
        event = await console.read_until("event", event="broadcast")
        assert decode_event(event) == DataBroadcast(
            data=b"to all\n", size=7, at=parse_utc_time(event["time"]), recipients=3
        )
        await clients[0].send_all(b"after")  # an event after the broadcast's deliveries: none was a "sent"
        await receive_exactly(clients[0], 5)
        while (message := await console.read()) is not None and message.get("event") != "data":
            assert message.get("event") != "sent", message
        await console.aclose()
        for client in clients:
            await client.aclose()
