"""Retake the README's picture of ``tui-echo web`` (assets/web.png): ``make screenshot``.

It runs what a user would: a headless ``tui-echo`` with three real clients,
``tui-echo web`` on it, and the system's chromium (driven by playwright) on
the printed URL. In the tab, ``k`` kicks the first client; the picture shows
the others' rows and the kick in the feed. Needs ``chromium`` (apt) and the
test extras (playwright); nothing is downloaded.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

OUTPUT = Path(__file__).resolve().parent.parent / "assets" / "web.png"
COMMAND = str(Path(sys.executable).with_name("tui-echo"))
CHROMIUM = "/usr/bin/chromium"
TIMEOUT = 10.0


def first_line(process: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.search(pattern, line):
            return match
    raise SystemExit(f"web_screenshot: no line matching {pattern!r} from {process.args}")


def talk(client: socket.socket, data: bytes) -> None:
    client.sendall(data)
    got = b""
    while len(got) < len(data):
        got += client.recv(65536)


def main() -> None:
    # The default control socket, as a user would have it (the port is any free one).
    server = subprocess.Popen([COMMAND, "--headless", "--port", "0"], stdout=subprocess.PIPE, text=True)
    web = None
    try:
        found = first_line(server, r"listening on 127\.0\.0\.1:(\d+) .*control socket (\S+)")
        port, control = int(found.group(1)), found.group(2)
        web = subprocess.Popen([COMMAND, "web", control, "--http-port", "0"], stdout=subprocess.PIPE, text=True)
        url = first_line(web, r"http://\S+token=\S+").group(0)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(3)]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
            )
            page = browser.new_page(viewport={"width": 1200, "height": 640})
            page.goto(url)
            page.wait_for_selector("body.-first-byte", timeout=TIMEOUT * 1000)
            talk(clients[0], b"GET / HTTP/1.0\r\n\r\n")
            talk(clients[1], b"hello from the second client\n")
            talk(clients[2], b"\x02\x00\x10sensor 7: 21.5C\x03")
            time.sleep(1.5)  # the table's next repaint shows their rows (no way to ask the canvas)
            page.locator("textarea.xterm-helper-textarea").focus()
            page.keyboard.press("k")  # the first row: client #1
            assert clients[0].recv(100) == b"", "k did not kick client #1"
            talk(clients[1], b"still here\n")
            time.sleep(1.5)
            page.screenshot(path=str(OUTPUT))
            browser.close()
    finally:
        for process in (web, server):
            if process is not None:
                process.terminate()
                process.wait(TIMEOUT)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
