"""Retry timing as data: full-jitter backoff, the Svix delivery schedule, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.backoff import DELIVERY_SCHEDULE, Backoff, Schedule, parse_retry_after

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
units = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


# ── Backoff: full jitter ─────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("attempt", "u", "expected"),
    [
        (0, 0.0, 0.0),
        (0, 0.5, 0.25),
        (1, 0.5, 0.5),
        (2, 0.5, 1.0),
        (3, 0.5, 2.0),
        (4, 0.5, 4.0),  # 0.5 × 2⁴ = 8 = cap
        (5, 0.5, 4.0),  # capped
        (40, 0.5, 4.0),
    ],
)
def test_backoff_delay_table(attempt: int, u: float, expected: float) -> None:
    assert Backoff(base=0.5, cap=8.0).delay(attempt, u) == pytest.approx(expected)


@given(
    base=st.floats(min_value=0.01, max_value=10.0),
    cap=st.floats(min_value=0.01, max_value=600.0),
    attempt=st.integers(min_value=0, max_value=64),
    u=units,
)
def test_full_jitter_stays_between_zero_and_the_capped_exponential(
    base: float, cap: float, attempt: int, u: float
) -> None:
    delay = Backoff(base=base, cap=cap).delay(attempt, u)
    assert 0.0 <= delay <= min(cap, base * 2.0**attempt)
    assert delay <= cap


@given(attempt=st.integers(min_value=0, max_value=64), low=units, high=units)
def test_backoff_grows_with_u(attempt: int, low: float, high: float) -> None:
    low, high = sorted((low, high))
    policy = Backoff()
    assert policy.delay(attempt, low) <= policy.delay(attempt, high)


def test_backoff_defaults() -> None:
    assert Backoff() == Backoff(base=0.5, cap=8.0, retries=2)


# ── Schedule: Svix / Standard Webhooks steps ─────────────────────────────────────────────────


def test_delivery_schedule_is_the_svix_schedule() -> None:
    assert DELIVERY_SCHEDULE.steps == (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@pytest.mark.parametrize(
    ("attempts", "step"),
    [(1, 5.0), (2, 300.0), (3, 1800.0), (4, 7200.0), (5, 18000.0), (6, 36000.0), (7, 36000.0)],
)
def test_schedule_delay_after_each_failed_attempt(attempts: int, step: float) -> None:
    assert DELIVERY_SCHEDULE.delay(attempts, 0.5) == pytest.approx(step)
    assert DELIVERY_SCHEDULE.delay(attempts, 0.0) == pytest.approx(step * 0.9)
    assert DELIVERY_SCHEDULE.delay(attempts, 0.999999) == pytest.approx(step * 1.1, rel=1e-5)


@pytest.mark.parametrize("attempts", [8, 9, 100])
def test_schedule_is_spent_after_the_last_attempt(attempts: int) -> None:
    assert DELIVERY_SCHEDULE.delay(attempts, 0.5) is None


@pytest.mark.parametrize("attempts", [0, -1])
def test_schedule_has_no_delay_before_any_failure(attempts: int) -> None:
    assert DELIVERY_SCHEDULE.delay(attempts, 0.5) is None


@given(
    steps=st.lists(st.floats(min_value=0.0, max_value=1e5), min_size=1, max_size=10),
    jitter=st.floats(min_value=0.0, max_value=0.5),
    attempts=st.integers(min_value=-2, max_value=12),
    u=units,
)
def test_schedule_delay_is_its_step_within_jitter(
    steps: list[float], jitter: float, attempts: int, u: float
) -> None:
    schedule = Schedule(tuple(steps), jitter=jitter)
    delay = schedule.delay(attempts, u)
    if not 1 <= attempts < len(steps):
        assert delay is None
        return
    assert delay is not None
    step = steps[attempts]
    assert step * (1 - jitter) - 1e-9 <= delay <= step * (1 + jitter) + 1e-9


def test_schedule_gives_exactly_len_steps_attempts() -> None:
    attempts = 1  # the first attempt is made at once
    while DELIVERY_SCHEDULE.delay(attempts, 0.5) is not None:
        attempts += 1
    assert attempts == len(DELIVERY_SCHEDULE.steps)


# ── Retry-After ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 30 ", 30.0),
        ("0", 1.0),  # floor
        ("1", 1.0),
        ("900", 900.0),
        ("901", 900.0),  # cap
        ("86400", 900.0),
        ("9" * 400, 900.0),
        (http_date(NOW + timedelta(seconds=90)), 90.0),
        (http_date(NOW + timedelta(hours=2)), 900.0),
        (http_date(NOW - timedelta(hours=1)), 1.0),  # in the past: floor
        (http_date(NOW), 1.0),
        ("Fri, 01 Mar 2024 12:01:00 GMT", 60.0),
        ("Fri, 01 Mar 2024 13:01:00 +0100", 60.0),
        ("Fri, 01 Mar 2024 12:01:00 -0000", 60.0),  # RFC 2822's "unknown zone": read as UTC
    ],
)
def test_retry_after_is_read_and_clamped(header: str, expected: float) -> None:
    assert parse_retry_after(header, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "soon", "-5", "1.5", "1e3", "0x10", "Fri, 32 Mar 2024 12:00:00 GMT", "🙂"],
)
def test_unreadable_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header, NOW) is None


def test_retry_after_floor_and_cap_are_parameters() -> None:
    assert parse_retry_after("0", NOW, floor=0.0) == 0.0
    assert parse_retry_after("5000", NOW, cap=3600.0) == 3600.0
    assert parse_retry_after("5", NOW, floor=10.0) == 10.0


@given(seconds=st.integers(min_value=0, max_value=10**6))
def test_delay_seconds_are_clamped_into_floor_and_cap(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == min(900.0, max(1.0, float(seconds)))


@given(offset=st.integers(min_value=-(10**6), max_value=10**6))
def test_http_dates_count_from_now(offset: int) -> None:
    header = http_date(NOW + timedelta(seconds=offset))
    assert parse_retry_after(header, NOW) == min(900.0, max(1.0, float(offset)))


@given(header=st.text(st.characters(codec="ascii"), max_size=40))
def test_ascii_headers_never_raise(header: str) -> None:
    result = parse_retry_after(header, NOW)
    assert result is None or 1.0 <= result <= 900.0


@pytest.mark.parametrize("header", ["²", "¹0", "³"], ids=["sup2", "sup1-0", "sup3"])
def test_superscript_digits_are_unreadable_not_an_exception(header: str) -> None:
    assert parse_retry_after(header, NOW) is None
