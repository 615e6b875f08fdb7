"""The least a trio server with one task per client can do: a raw non-blocking socket per client,
recv, send, one yield per chunk (the next recv after the others' turn) and a readiness wait only when
the recv finds nothing: tui-echo's hot loop with nothing else (no counts, no events, no checks). Its
speed is the ceiling of tui-echo's design on trio. `--wait-after-echo` waits for readability after
each echo instead (tui-echo's loop before issue 19's second change).

Prints the port it got on stdout (argument: port, 0 picks one).
"""

from __future__ import annotations

import socket
import sys

import trio


async def echo(sock: socket.socket) -> None:
    recv, send, wait_readable = sock.recv, sock.send, trio.lowlevel.wait_readable
    with sock:
        while True:
            try:
                data = recv(65536)
            except BlockingIOError:
                await wait_readable(sock)
                continue
            except OSError:
                return
            if not data:
                return
            try:
                sent = send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return
            while sent < len(data):  # the client reads slower than it writes
                await trio.lowlevel.wait_writable(sock)
                try:
                    sent += send(memoryview(data)[sent:])
                except BlockingIOError:
                    pass
                except OSError:
                    return
            if WAIT_AFTER_ECHO:
                await wait_readable(sock)
            else:
                await trio.lowlevel.checkpoint()


async def main(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    async with trio.open_nursery() as nursery:
        while True:
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(listener)
                continue
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nursery.start_soon(echo, client)


WAIT_AFTER_ECHO = "--wait-after-echo" in sys.argv[2:]

if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 0)
