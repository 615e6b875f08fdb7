"""The classic thread-per-client teaching server, rebuilt from its description as a baseline.

The main thread accepts in a loop and starts one Thread subclass per
connection; that thread loops on recv(1024) and sendall(), counts received
chunks ("lines") and prints two lines after each echo. The teaching server
binds 127.0.0.1:12354; here the port is an argument (0 picks one) and the
real port goes to stderr so that stdout can go to /dev/null.
"""

from __future__ import annotations

import socket
import sys
import threading


class ClientThread(threading.Thread):
    def __init__(self, conn: socket.socket) -> None:
        super().__init__(daemon=True)
        self.conn = conn
        self.lines = 0

    def run(self) -> None:
        with self.conn:
            while True:
                try:
                    data = self.conn.recv(1024)
                except OSError:
                    return
                if not data:
                    return
                self.conn.sendall(data)
                self.lines += 1
                print(self.conn)
                print(f"{data!r} (line {self.lines})")


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 12354
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    print(server.getsockname()[1], file=sys.stderr, flush=True)
    while True:
        conn, _ = server.accept()
        ClientThread(conn).start()


if __name__ == "__main__":
    main()
