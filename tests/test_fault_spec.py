"""Fault specs: the one parser and writer (pure), round-trip exact, every bad spec one clear error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_echo.server.faults import (
    MAX_MS,
    MAX_SPEC_CHARS,
    NO_FAULTS,
    FaultSpecError,
    Faults,
    format_faults,
    parse_faults,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("latency=200ms", Faults(latency=200)),
        ("latency=200ms,jitter=50ms", Faults(latency=200, jitter=50)),
        ("latency=1.5s", Faults(latency=1500)),
        ("bandwidth=10KiB/s", Faults(bandwidth=10 * 1024)),
        ("bandwidth=1MB/s", Faults(bandwidth=1_000_000)),
        ("slicer=16B/5ms", Faults(slicer=(16, 5))),
        ("stall", Faults(stall=0)),
        ("stall=5s", Faults(stall=5000)),
        ("timeout", Faults(timeout=True)),
        ("reset", Faults(reset_after_bytes=0)),
        ("reset-after=0", Faults(reset_after_bytes=0)),
        ("reset-after=4KiB", Faults(reset_after_bytes=4096)),
        ("reset-after=3s", Faults(reset_after_ms=3000)),
        ("close-after=100", Faults(close_after_bytes=100)),
        ("close-after=2m", Faults(close_after_ms=120_000)),
        ("slow-close=2s", Faults(slow_close=2000)),
        ("corrupt=0.001", Faults(corrupt=0.001)),
        ("drop=0.1", Faults(drop=0.1)),
        ("limit-data=1MiB", Faults(limit_data=1 << 20)),
        (" latency = 100ms , slicer=8B/1ms ,toxicity=0.5", Faults(latency=100, slicer=(8, 1), toxicity=0.5)),
    ],
)
def test_each_fault_reads_as_toxiproxy_names_it(spec: str, expected: Faults) -> None:
    assert parse_faults(spec) == expected


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "empty fault spec"),
        ("latency=200ms,,drop=0.1", "empty item"),
        ("lag=200ms", "unknown fault 'lag'"),
        ("latency=200", "a time needs a unit"),
        ("latency=200ks", "a time needs a unit"),
        ("latency=-200ms", "no negative values"),
        ("latency=0ms", "out of range"),
        ("latency=25h", "a time needs a unit"),
        (f"latency={MAX_MS + 1}ms", "out of range"),
        ("latency=0.5ms", "whole milliseconds"),
        ("latency", "latency needs a value"),
        ("jitter=5ms", "jitter needs a latency"),
        ("bandwidth=10KiB", "a size per second"),
        ("bandwidth=0/s", "out of range"),
        ("bandwidth=10QB/s", "unknown size unit"),
        ("slicer=16B", "a piece size and a gap"),
        ("slicer=0B/5ms", "out of range"),
        ("stall=-1s", "no negative values"),
        ("timeout=5s", "takes no value"),
        ("reset=1", "takes no value"),
        ("reset,reset-after=3s", "a size or a time, not both"),
        ("close-after=1KiB,close-after=2s", "a size or a time, not both"),
        ("corrupt=1.5", "from 0 to 1"),
        ("corrupt=0", "does nothing"),
        ("drop=-0.1", "from 0 to 1"),
        ("drop=nan", "from 0 to 1"),
        ("drop=lots", "a number from 0 to 1"),
        ("toxicity=0.5", "toxicity alone"),
        ("stall,stall=1s", "given twice"),
        ("limit-data=2TiB", "unknown size unit"),
        ("limit-data=1.5B", "whole bytes"),
        ("x" * (MAX_SPEC_CHARS + 1), "longer than"),
    ],
)
def test_every_bad_spec_is_one_clear_line(spec: str, says: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_faults(spec)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message


milliseconds = st.integers(1, MAX_MS)
sizes = st.integers(0, 1 << 40)
chances = st.floats(0.0, 1.0, allow_nan=False).filter(lambda chance: chance > 0.0)


@st.composite
def faults(draw: st.DrawFn) -> Faults:
    """Any valid Faults: each field drawn or left alone, and the pairs that exclude each other never both."""
    maybe = st.booleans()
    latency = draw(milliseconds) if draw(maybe) else 0
    reset_bytes = draw(sizes) if draw(maybe) else None
    close_bytes = draw(sizes) if draw(maybe) else None
    made = Faults(
        latency=latency,
        jitter=draw(milliseconds) if latency and draw(maybe) else 0,
        bandwidth=draw(st.integers(1, 1 << 40)) if draw(maybe) else 0,
        slicer=(draw(st.integers(1, 1 << 40)), draw(st.integers(0, MAX_MS))) if draw(maybe) else None,
        stall=draw(st.integers(0, MAX_MS)) if draw(maybe) else None,
        timeout=draw(maybe),
        reset_after_bytes=reset_bytes,
        reset_after_ms=draw(milliseconds) if reset_bytes is None and draw(maybe) else None,
        close_after_bytes=close_bytes,
        close_after_ms=draw(milliseconds) if close_bytes is None and draw(maybe) else None,
        slow_close=draw(milliseconds) if draw(maybe) else 0,
        corrupt=draw(chances) if draw(maybe) else 0.0,
        drop=draw(chances) if draw(maybe) else 0.0,
        limit_data=draw(sizes) if draw(maybe) else None,
    )
    if made == NO_FAULTS:
        made = Faults(timeout=True)
    return Faults(**{**_as_dict(made), "toxicity": draw(st.floats(0.0, 1.0))}) if draw(maybe) else made


def _as_dict(made: Faults) -> dict[str, object]:
    return {name: getattr(made, name) for name in made.__slots__}  # type: ignore[attr-defined]


@given(faults())
def test_a_spec_written_reads_back_as_the_same_faults(made: Faults) -> None:
    written = format_faults(made)
    assert parse_faults(written) == made
    assert len(written) <= MAX_SPEC_CHARS


@given(st.text(max_size=80))
def test_any_text_reads_as_faults_or_one_clear_error(text: str) -> None:
    try:
        parse_faults(text)
    except FaultSpecError as exc:
        assert "\n" not in str(exc) or "\n" in text


def test_what_a_fault_holds_for() -> None:
    assert parse_faults("stall=5s").slow and parse_faults("timeout").slow and parse_faults("latency=1ms").slow
    assert parse_faults("bandwidth=1KiB/s").slow
    assert not parse_faults("drop=0.5").slow and not parse_faults("reset-after=1KiB").slow
    assert parse_faults("stall=5s,reset-after=3s").ends_in == 3000
    assert parse_faults("stall").ends_in is None
    assert parse_faults("close-after=1KiB,limit-data=100").close_after == 100
