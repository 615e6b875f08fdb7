"""--metrics: a real Prometheus (2.42) scrapes the server; its HTTP API answers with the very counts ``ctl``
reports; ``promtool check metrics`` passes on the exposition; the names follow Prometheus's rules."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tui_echo.control.client import Connection

from .helpers import TIMEOUT
from .process import HeadlessProcess, listening_port, needs_tool, run_cli


def metrics_url(server: HeadlessProcess) -> str:
    line = server.wait_for_text("metrics for Prometheus on ")
    match = re.search(r"(http://\S+/metrics)", line)
    assert match, line
    return match.group(1)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.read().decode()


def sample(exposition: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", exposition, re.MULTILINE)
    assert match, f"{name} not in the exposition: {exposition[:3000]!r}"
    return float(match.group(1))


def snapshot(control: Path) -> dict:
    connection = Connection.open(control, events=False, role="list")
    connection.close()
    return connection.snapshot


def echo(sock: socket.socket, data: bytes) -> None:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        got += sock.recv(65536)
    assert got == data


@pytest.mark.heavy  # promtool
def test_the_exposition_names_every_count_exactly_and_passes_promtool(tmp_path: Path) -> None:
    control = tmp_path / "c.sock"
    server = HeadlessProcess("--metrics", "127.0.0.1:0", "--control", str(control), "--deny", "127.0.0.9")
    try:
        url = metrics_url(server)
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as client:
            for n in range(5):
                echo(client, b"x" * (n + 1))
            denied = socket.socket()
            denied.bind(("127.0.0.9", 0))
            denied.connect(("127.0.0.1", server.port))
            denied.close()
            deadline = time.monotonic() + TIMEOUT
            while snapshot(control)["totals"]["refused_total"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            exposition = get(url)
            totals = snapshot(control)["totals"]
        assert sample(exposition, "tui_echo_clients") == totals["clients_now"] == 1
        assert sample(exposition, "tui_echo_messages_received_total") == totals["messages_in"] == 5
        assert sample(exposition, "tui_echo_received_bytes_total") == totals["bytes_in"] == 15
        assert sample(exposition, "tui_echo_sent_bytes_total") == totals["bytes_out"] == 15
        assert sample(exposition, 'tui_echo_connections_refused_total{reason="denied"}') == 1
        assert re.search(r'^tui_echo_info\{mode="echo",tls="no",version="[^"]+"\} 1\.0$', exposition, re.MULTILINE)
        names = set(re.findall(r"^# TYPE (tui_echo_\w+) (\w+)$", exposition, re.MULTILINE))
        assert all(name.endswith("_total") for name, kind in names if kind == "counter")
        assert not re.search(r'(peer|client|address|port)="', exposition)  # no per-client labels
        promtool = needs_tool("promtool")
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
    finally:
        server.stop()
        server.close()


def test_metrics_on_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(["--headless", "--port", "0", "--no-control", "--metrics", f"127.0.0.1:{port}"])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"tui-echo: error: cannot serve --metrics on 127.0.0.1:{port}: ")
    assert len(done.stderr.splitlines()) == 1


def query(prometheus: str, expression: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    answer = json.loads(get(url))
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


@pytest.mark.heavy
def test_a_real_prometheus_scrape_returns_what_ctl_reports(tmp_path: Path) -> None:
    binary = needs_tool("prometheus")
    control = tmp_path / "c.sock"
    server = HeadlessProcess("--metrics", "127.0.0.1:0", "--control", str(control))
    prometheus = None
    clients = []
    try:
        target = metrics_url(server).removeprefix("http://").removesuffix("/metrics")
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n"
            f"scrape_configs:\n  - job_name: tui-echo\n    static_configs:\n      - targets: ['{target}']\n"
        )
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                "--web.listen-address=127.0.0.1:0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{listening_port(prometheus.pid)}"
        for n in range(20):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
            echo(sock, b"m" * (n + 1))
            echo(sock, b"second\n")
            clients.append(sock)
        for sock in clients[:5]:
            sock.close()
        deadline = time.monotonic() + TIMEOUT
        while snapshot(control)["totals"]["clients_now"] != 15:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stopped = time.time()  # the clients have stopped sending; wait for a scrape after this moment
        while True:
            assert time.monotonic() < deadline, "no scrape after the clients stopped"
            scraped = query(api, 'timestamp(up{job="tui-echo"} == 1)')  # the latest successful scrape
            if scraped and float(scraped[0]["value"][1]) > stopped:
                break
            time.sleep(0.2)
        totals = snapshot(control)["totals"]
        done = run_cli(["ctl", str(control), "clients", "--json"])
        assert len(json.loads(done.stdout)) == 15
        for expression, expected in (
            ("tui_echo_messages_received_total", totals["messages_in"]),
            ("tui_echo_received_bytes_total", totals["bytes_in"]),
            ("tui_echo_sent_bytes_total", totals["bytes_out"]),
            ("tui_echo_clients", totals["clients_now"]),
            ("tui_echo_connections_accepted_total", totals["clients_total"]),
            ('tui_echo_disconnects_total{reason="closed by peer"}', 5),
        ):
            [result] = query(api, expression)
            assert float(result["value"][1]) == expected, expression
        assert (totals["messages_in"], totals["bytes_in"], totals["clients_now"]) == (40, 20 * 21 // 2 + 20 * 7, 15)
    finally:
        for sock in clients:
            sock.close()
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(TIMEOUT)
        server.stop()
        server.close()


@pytest.mark.trio
async def test_scrapes_while_the_server_stops_neither_hold_up_the_stop_nor_fail() -> None:
    import threading

    import trio

    from tui_echo.server.config import ServerConfig
    from tui_echo.service import Service

    service = Service(ServerConfig(host="127.0.0.1", port=0, metrics=("127.0.0.1", 0)), event_buffer=4096)
    service.listen()
    assert service.metrics is not None and service.metrics.address is not None
    url = f"http://127.0.0.1:{service.metrics.address[1]}/metrics"
    done = threading.Event()
    answers: list[float] = []

    def scrape() -> None:  # as fast as it can, until the server has stopped
        while not done.is_set():
            try:
                answers.append(sample(get(url), "tui_echo_clients"))
            except OSError:  # the endpoint has closed, after the stop
                return

    async def consume() -> None:
        async for _ in service.events:
            pass

    scrapers = [threading.Thread(target=scrape, daemon=True) for _ in range(4)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await nursery.start(service.serve)
        for scraper in scrapers:
            scraper.start()
        with trio.fail_after(TIMEOUT):
            while len(answers) < 50:
                await trio.sleep(0.01)
        service.server.stop()
    # serve() returned: the stop was not held up by the scrapes under way
    done.set()
    for scraper in scrapers:
        scraper.join(TIMEOUT)
    assert answers and set(answers) == {0.0}
