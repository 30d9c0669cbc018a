"""What every alert destination promises: deliver one event, say how it went.

A sink classifies its receiver's answer once (an `Outcome`); the dispatcher owns what follows:
retry timing, dead letters, pausing or disabling the sink. A sink never raises for a failed
delivery and never puts its URL, secrets or headers into a reason string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from monitor.core import digest
from monitor.core.backoff import DELIVERY_SCHEDULE, Schedule
from monitor.core.delivery import Delivered, Gone, Outcome, Rejected, RetryLater
from monitor.core.events import Event

__all__ = [
    "MAIL",
    "SERIAL",
    "SLACK",
    "TEAMS",
    "Delivered",
    "Digesting",
    "Gone",
    "Limits",
    "Outcome",
    "Rejected",
    "Resending",
    "RetryLater",
    "Sink",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """How hard the dispatcher may push one sink; each sink has its own, so a slow or dead
    receiver only ever uses up its own budget."""

    concurrency: int = 4
    """Deliveries in flight at once."""
    rate: float | None = None
    """Deliveries started per second; None is unlimited."""
    schedule: Schedule = DELIVERY_SCHEDULE
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0


SERIAL = Limits(concurrency=1)
"""One delivery at a time (Alertmanager, the log)."""
SLACK = Limits(concurrency=1, rate=1.0)
"""Slack's posting limit: about one message per second per webhook."""
TEAMS = Limits(concurrency=1, rate=1.0)
"""Teams Workflows: a flow run per post, throttled per flow; Teams' own connector limit was
four posts a second, so one a second leaves room for bursts (rate_limit raises it to 4)."""
MAIL = Limits(concurrency=1, rate=1.0)
"""One SMTP session at a time, one message a second: mail providers throttle per account
(e.g. 30 a minute), and an alert storm must not get the sender's account blocked."""


class Sink(Protocol):
    name: str
    limits: Limits
    fingerprint: str
    """Digest of the sink's configuration: a disabled sink stays disabled until it changes."""

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        """Send one event. `body` is the exact JSON stored in the outbox; `now` is epoch seconds."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Resending(Protocol):
    """A sink whose receiver forgets what is not repeated (Alertmanager resolves an alert that
    is not re-posted before its endsAt): the dispatcher re-posts what is still firing, and
    hands over as `retired` the firing alerts of sessions no longer watched, to be ended."""

    resend_interval: float

    async def resend(
        self, events: Sequence[Event], *, now: float, retired: Sequence[Event] = ()
    ) -> Outcome: ...


@runtime_checkable
class Digesting(Protocol):
    """A sink a person reads (Slack, Teams, e-mail, the log): it can say many events in one
    message. Machine sinks (signed webhooks, Alertmanager) never batch: a receiver there
    de-duplicates and acts per event."""

    async def deliver_digest(
        self, found: digest.Group, *, now: float, status_url: str | None
    ) -> Outcome: ...
