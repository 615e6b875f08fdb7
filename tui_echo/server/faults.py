"""Fault specs: what a misbehaving peer does to one client (``latency=200ms,slicer=16B/5ms``). Pure: no trio.

One parser (``parse_faults``) and one writer (``format_faults``), round-trip exact: the command line, the
control protocol, the monitor's form and the rules file all read a spec with the first, and everything that
shows one (the table, the log, the wire) writes it with the second. Names follow toxiproxy's where it has one.
Every value is bounded, and every bad spec raises ``FaultSpecError`` with one line that says what is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TypeAlias

CLEAR_FAULTS = "clear"  # what ctl, the protocol and a rule's fault action write to take a client's faults away
MAX_SPEC_CHARS = 500  # a spec is a handful of short items
MAX_MS = 86_400_000  # a day: no fault waits longer
MAX_BYTES = 1 << 40  # 1 TiB: sizes and rates

_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
_TIME_UNITS = {"ms": 1, "s": 1000, "m": 60_000}
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)([a-zA-Z]*)")


class FaultSpecError(ValueError):
    """A spec that cannot be read; the message is one line for the user."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """What is done to a client's bytes. Times in whole milliseconds, sizes in bytes, chances in 0..1.

    ``stall`` 0 and ``timeout`` hold until cleared; ``reset_after_bytes=0`` is ``reset``. Byte limits
    count what the server has sent to the client since the faults were set.
    """

    latency: int = 0
    jitter: int = 0
    bandwidth: int = 0  # bytes a second; 0: unpaced
    slicer: tuple[int, int] | None = None  # (bytes a piece, ms between pieces)
    stall: int | None = None  # ms; 0: until cleared
    timeout: bool = False
    reset_after_bytes: int | None = None
    reset_after_ms: int | None = None
    close_after_bytes: int | None = None
    close_after_ms: int | None = None
    slow_close: int = 0
    corrupt: float = 0.0
    drop: float = 0.0
    limit_data: int | None = None
    toxicity: float = 1.0  # server-wide (--fault): the chance that a new client gets these faults

    @property
    def slow(self) -> bool:
        """Meant to be slow: the client is exempt from the idle and write timeouts while this holds."""
        return self.stall is not None or self.timeout or self.latency > 0 or self.bandwidth > 0

    @property
    def ends_in(self) -> int | None:
        """Ms after which these faults end by themselves or end the client, if any."""
        times = [t for t in (self.stall or None, self.reset_after_ms, self.close_after_ms) if t is not None]
        return min(times) if times else None

    @property
    def close_after(self) -> int | None:
        """Bytes after which the client is closed cleanly (``close-after`` or ``limit-data``, the lower)."""
        limits = [n for n in (self.close_after_bytes, self.limit_data) if n is not None]
        return min(limits) if limits else None


NO_FAULTS = Faults()


def parse_faults(text: str) -> Faults:
    """Read a spec such as ``latency=100ms,jitter=20ms,slicer=8B/1ms``; raises FaultSpecError."""
    if len(text) > MAX_SPEC_CHARS:
        raise FaultSpecError(f"fault spec longer than {MAX_SPEC_CHARS} characters")
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise FaultSpecError("empty fault spec: give e.g. latency=200ms (or clear)")
    values: dict[str, object] = {}
    for item in items:
        if not item:
            raise FaultSpecError(f"empty item in fault spec {text!r}")
        name, has_value, raw = (part.strip() for part in item.partition("="))
        reader = _READERS.get(name)
        if reader is None:
            raise FaultSpecError(f"unknown fault {name!r}: known are {', '.join(_READERS)}")
        field_name, value = reader(name, raw if has_value else None)
        if field_name in values:
            raise FaultSpecError(f"fault {name!r} given twice")
        values[field_name] = value
    if values.get("jitter") and not values.get("latency"):
        raise FaultSpecError("jitter needs a latency (latency=200ms,jitter=50ms)")
    if "reset_after_bytes" in values and "reset_after_ms" in values:
        raise FaultSpecError("reset-after takes a size or a time, not both")
    if "close_after_bytes" in values and "close_after_ms" in values:
        raise FaultSpecError("close-after takes a size or a time, not both")
    if set(values) == {"toxicity"}:
        raise FaultSpecError("toxicity alone does nothing: give a fault with it")
    return Faults(**values)  # type: ignore[arg-type]


def format_faults(faults: Faults) -> str:
    """The spec that ``parse_faults`` reads back as ``faults``: canonical order, exact units."""
    parts: list[str] = []
    if faults.latency:
        parts.append(f"latency={_ms(faults.latency)}")
    if faults.jitter:
        parts.append(f"jitter={_ms(faults.jitter)}")
    if faults.bandwidth:
        parts.append(f"bandwidth={_size(faults.bandwidth)}/s")
    if faults.slicer is not None:
        parts.append(f"slicer={_size(faults.slicer[0])}/{_ms(faults.slicer[1])}")
    if faults.stall is not None:
        parts.append(f"stall={_ms(faults.stall)}" if faults.stall else "stall")
    if faults.timeout:
        parts.append("timeout")
    if faults.reset_after_bytes == 0:
        parts.append("reset")
    elif faults.reset_after_bytes is not None:
        parts.append(f"reset-after={_size(faults.reset_after_bytes)}")
    if faults.reset_after_ms is not None:
        parts.append(f"reset-after={_ms(faults.reset_after_ms)}")
    if faults.close_after_bytes is not None:
        parts.append(f"close-after={_size(faults.close_after_bytes)}")
    if faults.close_after_ms is not None:
        parts.append(f"close-after={_ms(faults.close_after_ms)}")
    if faults.slow_close:
        parts.append(f"slow-close={_ms(faults.slow_close)}")
    if faults.corrupt:
        parts.append(f"corrupt={faults.corrupt!r}")
    if faults.drop:
        parts.append(f"drop={faults.drop!r}")
    if faults.limit_data is not None:
        parts.append(f"limit-data={_size(faults.limit_data)}")
    if faults.toxicity != 1.0:
        parts.append(f"toxicity={faults.toxicity!r}")
    return ",".join(parts)


# ---- values ------------------------------------------------------------------


def read_ms(name: str, raw: str, *, zero: bool = False) -> int:
    """``200ms``, ``1.5s``, ``2m`` as whole milliseconds (``0`` alone only where ``zero``)."""
    if zero and raw == "0":
        return 0
    return _quantity(name, raw, _TIME_UNITS, _TIME, zero=zero)


def read_bytes(name: str, raw: str, *, zero: bool = True) -> int:
    """``4KiB``, ``1MB``, ``16B`` or a bare number of bytes."""
    return _quantity(name, raw, _SIZE_UNITS, _SIZE, zero=zero)


@dataclass(frozen=True, slots=True)
class _Kind:
    """What a quantity is called in the errors, and its bounds."""

    example: str  # "a time such as 200ms or 2s"
    units: str  # the unit error: "a time needs a unit: ms, s or m"
    whole: str  # "times are whole milliseconds"
    smallest: str  # "1ms"
    largest: int
    largest_text: str  # "24h"


_TIME = _Kind(
    "a time such as 200ms or 2s",
    "a time needs a unit: ms, s or m",
    "times are whole milliseconds",
    "1ms",
    MAX_MS,
    "24h",
)
_SIZE = _Kind(
    "a size such as 4KiB or 100B",
    "unknown size unit {unit!r} (B, KB, KiB, MB, MiB, GB, GiB)",
    "sizes are whole bytes",
    "1B",
    MAX_BYTES,
    "1TiB",
)


def _quantity(name: str, raw: str, units: dict[str, int], kind: _Kind, *, zero: bool) -> int:
    number, unit = _split(name, raw, kind.example)
    if unit.lower() not in units:
        raise FaultSpecError(f"{name}={raw}: {kind.units.format(unit=unit)}")
    value = number * units[unit.lower()]
    if value != int(value):
        raise FaultSpecError(f"{name}={raw}: {kind.whole}")
    if not (zero or value > 0) or value > kind.largest:
        raise FaultSpecError(f"{name}={raw}: out of range ({'0' if zero else kind.smallest} to {kind.largest_text})")
    return int(value)


def read_chance(name: str, raw: str, *, zero: bool = True) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FaultSpecError(f"{name}={raw}: a chance is a number from 0 to 1, e.g. 0.01") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise FaultSpecError(f"{name}={raw}: a chance is from 0 to 1")
    if not zero and value == 0.0:
        raise FaultSpecError(f"{name}={raw}: a chance of 0 does nothing (clear the fault instead)")
    return value


def _split(name: str, raw: str, what: str) -> tuple[float, str]:
    match = _NUMBER.fullmatch(raw)
    if match is None:
        sign = " (no negative values)" if raw.startswith("-") else ""
        raise FaultSpecError(f"{name}={raw}: expected {what}{sign}")
    return float(match[1]), match[2]


def _ms(value: int) -> str:
    return f"{value // 60_000}m" if value % 60_000 == 0 else f"{value // 1000}s" if value % 1000 == 0 else f"{value}ms"


def _size(value: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"


# ---- one reader per fault name: (name as written, value or None) -> (field, value) ----------------------

Reader: TypeAlias = Callable[[str, "str | None"], tuple[str, object]]


def _needs(name: str, raw: str | None, example: str) -> str:
    if raw is None or raw == "":
        raise FaultSpecError(f"{name} needs a value: {name}={example}")
    return raw


def _flag(name: str, raw: str | None) -> None:
    if raw is not None:
        raise FaultSpecError(f"{name} takes no value (write {name} alone)")


def _rate(name: str, raw: str | None) -> tuple[str, object]:
    raw = _needs(name, raw, "10KiB/s")
    size, slash, per = raw.partition("/")
    if slash != "/" or per != "s":
        raise FaultSpecError(f"{name}={raw}: a rate is a size per second, e.g. 10KiB/s")
    return "bandwidth", read_bytes(name, size, zero=False)


def _slicer(name: str, raw: str | None) -> tuple[str, object]:
    raw = _needs(name, raw, "16B/5ms")
    size, slash, gap = raw.partition("/")
    if slash != "/":
        raise FaultSpecError(f"{name}={raw}: a piece size and a gap, e.g. 16B/5ms")
    return "slicer", (read_bytes(name, size, zero=False), read_ms(name, gap, zero=True))


def _stall(name: str, raw: str | None) -> tuple[str, object]:
    return "stall", 0 if raw is None else read_ms(name, raw)


def _timeout(name: str, raw: str | None) -> tuple[str, object]:
    _flag(name, raw)
    return "timeout", True


def _reset(name: str, raw: str | None) -> tuple[str, object]:
    _flag(name, raw)
    return "reset_after_bytes", 0


def _size_or_time(kind: str) -> Reader:
    def reader(name: str, raw: str | None) -> tuple[str, object]:
        raw = _needs(name, raw, "4KiB or 3s")
        unit = _NUMBER.fullmatch(raw)
        if unit is not None and unit[2].lower() in _TIME_UNITS:
            return f"{kind}_after_ms", read_ms(name, raw)
        return f"{kind}_after_bytes", read_bytes(name, raw)

    return reader


def _simple(field_name: str, read: Callable[[str, str], object], example: str) -> Reader:
    def reader(name: str, raw: str | None) -> tuple[str, object]:
        return field_name, read(name, _needs(name, raw, example))

    return reader


def _positive_chance(name: str, raw: str) -> float:
    return read_chance(name, raw, zero=False)


_READERS: dict[str, Reader] = {
    "latency": _simple("latency", read_ms, "200ms"),
    "jitter": _simple("jitter", read_ms, "50ms"),
    "bandwidth": _rate,
    "slicer": _slicer,
    "stall": _stall,
    "timeout": _timeout,
    "reset": _reset,
    "reset-after": _size_or_time("reset"),
    "close-after": _size_or_time("close"),
    "slow-close": _simple("slow_close", read_ms, "2s"),
    "corrupt": _simple("corrupt", _positive_chance, "0.001"),
    "drop": _simple("drop", _positive_chance, "0.1"),
    "limit-data": _simple("limit_data", read_bytes, "1MiB"),
    "toxicity": _simple("toxicity", read_chance, "0.5"),
}
FAULT_NAMES = tuple(_READERS)
FIELD_NAMES = tuple(field.name for field in fields(Faults))
