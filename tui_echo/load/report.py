"""The load's results: merged across workers, as a summary for people and as vmbench-style JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from tui_echo.load.engine import WorkerResult, new_histogram
from tui_echo.text import plural

# vmbench's echo_client reports these percentiles, in milliseconds.
VMBENCH_PERCENTILES = (25, 50, 75, 90, 99, 99.99)
SUMMARY_PERCENTILES = (50, 90, 99, 99.9)


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    target: str
    connections: int
    message_bytes: int
    mode: str  # "closed loop, 1 in flight" or "open loop, 1000 msgs/s", and ", over TLS"
    chat: bool  # the chat pattern: messages are deliveries, and lines are what was said
    messages: int
    lines: int
    missed: int
    notices: int
    bytes_sent: int
    bytes_checked: int
    seconds: float  # the measured window (the slowest worker's)
    connect_seconds: float  # until every connection had its first echo (or failed)
    first_echoes: int  # connections that had their first echo (chat: whose first line reached all the others)
    measured_from: float  # the measured window, as Unix time (all workers' together)
    measured_until: float
    connect_failures: int
    mismatches: int
    early_eofs: int
    errors: tuple[str, ...]
    histogram: HdrHistogram

    @property
    def clean(self) -> bool:
        return not (self.connect_failures or self.mismatches or self.early_eofs or self.missed or self.errors)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def mib_per_second(self) -> float:
        """Echoed payload, one direction, as vmbench's ``transfer``."""
        return self.rate * self.message_bytes / 2**20


def merge(
    results: list[WorkerResult], *, target: str, connections: int, message_bytes: int, mode: str, chat: bool = False
) -> Totals:
    histogram = new_histogram()
    for result in results:
        histogram.add(result.histogram)
    errors = tuple(error for result in results for error in result.errors)
    return Totals(
        target=target,
        connections=connections,
        message_bytes=message_bytes,
        mode=mode,
        chat=chat,
        messages=sum(r.messages for r in results),
        lines=sum(r.lines for r in results),
        missed=sum(r.missed for r in results),
        notices=sum(r.notices for r in results),
        bytes_sent=sum(r.bytes_sent for r in results),
        bytes_checked=sum(r.bytes_checked for r in results),
        seconds=max((r.measured_seconds for r in results), default=0.0),
        connect_seconds=max((r.connect_seconds for r in results), default=0.0),
        first_echoes=sum(r.first_echoes for r in results),
        measured_from=min((r.measured_from for r in results), default=0.0),
        measured_until=max((r.measured_until for r in results), default=0.0),
        connect_failures=sum(r.connect_failures for r in results),
        mismatches=sum(r.mismatches for r in results),
        early_eofs=sum(r.early_eofs for r in results),
        errors=errors,
        histogram=histogram,
    )


def _ms(histogram: HdrHistogram, percentile: float) -> float:
    return float(histogram.get_value_at_percentile(percentile)) / 1000


def _echo_lines(totals: Totals) -> list[str]:
    return [
        f"tui-echo load {totals.target}: {plural(totals.connections, 'connection')}, "
        f"{totals.message_bytes}-byte messages, {totals.mode}, {totals.seconds:.1f} s measured",
        f"connected:  {_how_it_began(totals)}",
        f"messages:   {totals.messages:,} ({totals.rate:,.0f}/s), {totals.mib_per_second:.2f} MiB/s each way",
    ]


def _chat_lines(totals: Totals) -> list[str]:
    lines_rate = totals.lines / totals.seconds if totals.seconds > 0 else 0.0
    return [
        f"tui-echo load {totals.target}: {plural(totals.connections, 'connection')} in a chat, "
        f"{totals.message_bytes}-byte lines, {totals.mode}, {totals.seconds:.1f} s measured",
        f"connected:  {_how_it_began(totals)}",
        f"delivered:  {totals.messages:,} lines heard ({totals.rate:,.0f}/s); {totals.lines:,} lines said "
        f"reached all {totals.connections - 1:,} others ({lines_rate:,.0f}/s)",
    ]


def summary(totals: Totals) -> str:
    h = totals.histogram
    lines = _chat_lines(totals) if totals.chat else _echo_lines(totals)
    if h.get_total_count():
        percentiles = "  ".join(f"p{p:g} {_ms(h, p):.2f}" for p in SUMMARY_PERCENTILES)
        lines.append(
            f"latency ms: min {h.get_min_value() / 1000:.2f}  mean {h.get_mean_value() / 1000:.2f}  "
            f"{percentiles}  max {h.get_max_value() / 1000:.2f}"
            + ("  (until the last of the others heard a line)" if totals.chat else "")
        )
    else:
        lines.append("latency ms: none measured (no echo came back in the measured time)")
    back = "heard and checked" if totals.chat else "echoed back and checked"
    lines.append(f"bytes:      {totals.bytes_sent:,} sent, {totals.bytes_checked:,} {back} (warm-up included)")
    missed = f", {totals.missed} never delivered" if totals.chat else ""
    lines.append(
        f"errors:     {plural(totals.connect_failures, 'connect failure')}, "
        f"{totals.mismatches} mismatched, {totals.early_eofs} early EOF or reset{missed}"
    )
    if totals.chat:
        lines.append(f"server:     {plural(totals.notices, 'line')} of its own (joins, leaves, the operator)")
    lines += [f"  {error}" for error in totals.errors]
    if totals.early_eofs and totals.early_eofs >= totals.connections - totals.connect_failures:
        lines.append("  every connection was closed by the server: did it stop or crash?")
    return "\n".join(lines)


def _how_it_began(totals: Totals) -> str:
    """Every connection was served (echo: its first echo; chat: its first line reached all the others), some
    were, or none (then no time is worth giving)."""
    done, connections = totals.first_echoes, totals.connections
    if totals.chat:
        every = "every connection was in the chat and every first line had reached all the others"
        some = "connections' first lines reached all the others"
        none = "no connection's first line reached all the others"
    else:
        every, some = "every connection had its first echo", "connections had their first echo"
        none = "no connection had an echo"
    if done == connections:
        return f"{every} after {totals.connect_seconds:.2f} s"
    if done == 0:
        return f"{none}, of {connections} tried"
    return f"{done} of {connections} {some}, after {totals.connect_seconds:.2f} s"


def vmbench_json(totals: Totals) -> str:
    """vmbench echo_client's keys and units (ms, MiB/s, cv in %), ours under ``tui_echo``."""
    h = totals.histogram
    count = h.get_total_count()
    mean = h.get_mean_value() / 1000 if count else 0.0
    std = h.get_stddev() / 1000 if count else 0.0
    record = {
        "messages": totals.messages,
        "transfer": round(totals.mib_per_second, 2),
        "rps": round(totals.rate, 2),
        "latency_min": round(h.get_min_value() / 1000, 3) if count else 0.0,
        "latency_mean": round(mean, 3),
        "latency_max": round(h.get_max_value() / 1000, 3) if count else 0.0,
        "latency_std": round(std, 3),
        "latency_cv": round(std / mean * 100, 2) if mean else 0.0,
        "latency_percentiles": [[p, round(_ms(h, p), 3)] for p in VMBENCH_PERCENTILES],
        "tui_echo": {
            "target": totals.target,
            "connections": totals.connections,
            "message_bytes": totals.message_bytes,
            "mode": totals.mode,
            "pattern": "chat" if totals.chat else "echo",
            "seconds": round(totals.seconds, 3),
            # null unless every connection had its first echo: the time until then
            "all_first_echo_s": round(totals.connect_seconds, 3) if totals.first_echoes == totals.connections else None,
            "first_echoes": totals.first_echoes,
            "measured_from": round(totals.measured_from, 3),
            "measured_until": round(totals.measured_until, 3),
            "bytes_sent": totals.bytes_sent,
            "bytes_checked": totals.bytes_checked,
            "latency_p99_9": round(_ms(h, 99.9), 3),
            "connect_failures": totals.connect_failures,
            "mismatches": totals.mismatches,
            "early_eofs": totals.early_eofs,
            **({"lines": totals.lines, "missed": totals.missed, "server_lines": totals.notices} if totals.chat else {}),
            "errors": list(totals.errors),
            "clean": totals.clean,
        },
    }
    return json.dumps(record)
