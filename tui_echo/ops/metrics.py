"""Prometheus metrics (``--metrics HOST:PORT``): the server's exact counts, served by prometheus-client.

prometheus-client serves from threads of its own. At each scrape its thread asks the trio side for a
snapshot (``trio.from_thread.run_sync``, the one sanctioned bridge): the snapshot is built in trio's
thread, between two steps of the server, from the very numbers ``ctl`` and the consoles show, and the
HTTP thread touches nothing else. Once the server has stopped, the last snapshot is served.

Naming follows Prometheus's: the prefix ``tui_echo_``, base units (bytes), ``_total`` on counters; the
only labels have a few fixed values (a refusal's or a disconnect's reason, a rule's number): never a
client, an address or a port.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from wsgiref.simple_server import WSGIServer

import trio
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tui_echo.net import Peer, format_address
from tui_echo.server.binding import ListenError
from tui_echo.server.events import DisconnectReason, RefusalReason, ServerTotals
from tui_echo.server.server import EchoServer


class MetricsError(ListenError):
    """--metrics cannot listen where asked (one line for the user)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    totals: ServerTotals
    disconnects: dict[DisconnectReason, int]
    log_lines_lost: int
    mode: str
    tls: bool


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _by(name: str, documentation: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """The metrics of one snapshot (every reason listed, at 0 until it happens, so that rate() sees the start)."""
    t = snapshot.totals
    info = GaugeMetricFamily(
        "tui_echo_info", "tui-echo's version and mode (always 1)", labels=["version", "mode", "tls"]
    )
    info.add_metric([version("tui-echo"), snapshot.mode, "yes" if snapshot.tls else "no"], 1)
    yield info
    yield GaugeMetricFamily("tui_echo_clients", "Clients connected now", value=t.clients_now)
    yield GaugeMetricFamily(
        "tui_echo_clients_peak", "Most clients connected at once since the start", value=t.clients_peak
    )
    yield _counter("tui_echo_connections_accepted", "Connections that became clients", t.clients_total)
    refused = {str(reason): t.refused_by_reason.get(reason, 0) for reason in RefusalReason}
    yield _by("tui_echo_connections_refused", "Connections closed at the door, by reason", "reason", refused)
    yield _counter("tui_echo_messages_received", "Messages received from clients (chunks, or lines)", t.messages_in)
    yield _counter("tui_echo_received_bytes", "Bytes received from clients", t.bytes_in)
    yield _counter("tui_echo_sent_bytes", "Bytes written to clients (echo, replies, relays, operator)", t.bytes_out)
    gone = {str(reason): snapshot.disconnects.get(reason, 0) for reason in DisconnectReason}
    yield _by("tui_echo_disconnects", "Clients that left, by reason", "reason", gone)
    yield _counter(
        "tui_echo_deliveries_dropped", "Chat and broker deliveries that never reached their receiver", t.dropped_out
    )
    yield _counter("tui_echo_events_dropped", "Data events the log, monitor or consoles skipped", t.events_skipped)
    yield _counter("tui_echo_log_lines_lost", "Log lines the log could not take", snapshot.log_lines_lost)
    yield _counter(
        "tui_echo_tls_handshakes_failed", "TLS connections that never became clients", t.tls_handshakes_failed
    )
    yield _counter(
        "tui_echo_proxy_checks", "--proxy-protocol: the proxy's own connections (health checks)", t.proxy_checks
    )
    hits = {str(number): count for number, count in enumerate(t.rule_hits, 1)}
    yield _by("tui_echo_rule_hits", "Messages each reply rule answered, by rule number", "rule", hits)


class _ServerCollector(Collector):
    def __init__(self, read: Callable[[], Snapshot | None]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        snapshot = self._read()
        if snapshot is not None:
            yield from families(snapshot)


class MetricsExporter:
    """The HTTP endpoint (bound by ``listen``, before anything runs) and the bridge to the trio side."""

    def __init__(self, server: EchoServer, where: tuple[str, int]) -> None:
        self._server = server
        self._where = where
        self.lines_lost: Callable[[], int] = lambda: 0  # the headless log's, when there is one
        self._token: trio.lowlevel.TrioToken | None = None
        self._last: Snapshot | None = None
        self._lock = threading.Lock()  # scrapes may come in parallel (one thread each)
        self._httpd: WSGIServer | None = None
        self.address: Peer | None = None

    def listen(self) -> Peer:
        """Bind and start serving (a thread); raises MetricsError. Until ``serve`` runs, scrapes get no metrics."""
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_ServerCollector(self._read))
        ProcessCollector(registry=registry)  # process_resident_memory_bytes, process_open_fds, ...
        host, port = self._where
        try:
            self._httpd, _thread = start_http_server(port, host, registry)
        except OSError as exc:
            where = format_address(self._where)
            raise MetricsError(f"cannot serve --metrics on {where}: {exc.strerror or exc}") from None
        self.address = self._httpd.server_address[:2]  # type: ignore[assignment]
        return self.address  # type: ignore[return-value]

    def bridge(self) -> None:
        """From now on, answer scrapes from the trio side (call it in trio's thread, before the server serves:
        a scrape that came before would find no counts)."""
        self._last = self._take()
        self._token = trio.lowlevel.current_trio_token()

    async def serve(self) -> None:
        """Say where the metrics are once the server serves; at the stop, the final counts, and the HTTP server
        shut down. Runs until cancelled; ``bridge()`` first."""
        try:
            await self._server.serving.wait()
            assert self.address is not None
            self._server.notice(f"metrics for Prometheus on http://{format_address(self.address)}/metrics")
            await trio.sleep_forever()
        finally:
            # Not under self._lock: a scrape holds it while it waits for this thread (a deadlock).
            self._last = self._take()  # the final counts, for a scrape after the stop
            self._token = None
            # The HTTP server's loop notices a shutdown within its 0.5 s poll: not worth holding up the stop.
            threading.Thread(target=self.close, name="tui-echo metrics shutdown", daemon=True).start()

    def close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def _take(self) -> Snapshot:
        server = self._server
        return Snapshot(
            totals=server.totals(),
            disconnects=server.disconnects(),
            log_lines_lost=self.lines_lost(),
            mode=str(server.config.mode),
            tls=server.config.tls is not None,
        )

    def _read(self) -> Snapshot | None:
        """In a scrape's thread: a fresh snapshot from the trio side, or the last one once it has stopped."""
        with self._lock:
            token = self._token
            if token is not None:
                with contextlib.suppress(trio.RunFinishedError):  # stopped meanwhile: the last one
                    self._last = trio.from_thread.run_sync(self._take, trio_token=token)
            return self._last
