"""Retry timing as data, shared by the API client and the alert dispatcher."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["DELIVERY_SCHEDULE", "Backoff", "Schedule", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (AWS, "Exponential Backoff and Jitter")."""

    base: float = 0.5
    cap: float = 8.0
    retries: int = 2
    """Extra attempts after the first one."""

    def delay(self, attempt: int, u: float) -> float:
        """Sleep before retry number `attempt` (0-based); `u` is uniform in [0, 1)."""
        return u * min(self.cap, self.base * 2.0**attempt)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Delays of each attempt from the previous one (the first is the first attempt's own,
    normally 0), ± `jitter`. After the last attempt fails, the delivery is dead."""

    steps: tuple[float, ...]
    jitter: float = 0.1

    def delay(self, attempts: int, u: float) -> float | None:
        """Delay after `attempts` failed attempts, or None when every attempt is spent."""
        if attempts < 1 or attempts >= len(self.steps):
            return None
        step = self.steps[attempts]
        return step * (1.0 + self.jitter * (2.0 * u - 1.0))


# Svix / Standard Webhooks: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DELIVERY_SCHEDULE = Schedule((0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0))


def parse_retry_after(
    value: str | None, now: datetime, *, floor: float = 1.0, cap: float = 900.0
) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), clamped.

    None when the header is absent or unreadable: the caller's own backoff then applies.
    """
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # isdigit alone accepts "²"
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(cap, max(floor, seconds))
