"""The throttle: ``TokenTimes`` (the readiness loop's inline form) takes what ``TokenBucket`` takes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tui_echo.ratelimit import TokenBucket, TokenTimes


@given(
    rate=st.sampled_from([1.0, 5.0, 20.0, 400.0]),
    gaps=st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=300),
)
def test_token_times_take_what_the_token_bucket_takes(rate: float, gaps: list[float]) -> None:
    """The same throttle, up to a token at a boundary: TokenTimes gives a token a nanosecond early on purpose
    (its sums of the interval must not lose one of the burst to rounding), where the bucket's float sums may
    still be a hair short of it."""
    bucket, times = TokenBucket(rate, rate, 0.0), TokenTimes(rate, rate)
    next_at, now, by_times, by_bucket = TokenTimes.FULL, 0.0, 0, 0
    for gap in gaps:
        now += gap
        if now >= next_at:
            next_at, by_times = times.after_take(next_at, now), by_times + 1
        by_bucket += bucket.take(now)
        assert abs(by_times - by_bucket) <= 1, f"at {now}"


def test_a_burst_of_rate_at_once_then_one_per_interval() -> None:
    times = TokenTimes(20.0, 20.0)
    next_at, taken = TokenTimes.FULL, 0
    for _ in range(100):  # all at time 0
        if next_at <= 0.0:
            next_at, taken = times.after_take(next_at, 0.0), taken + 1
    assert taken == 20 and 0.0 < next_at <= 0.05 + 1e-6
