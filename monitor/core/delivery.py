"""Delivery decisions, pure: when a sink counts as down, when to probe it, how to pace it,
when a failed row is retried, how long a row stays leased, and what a sink's answer means
for its row (`decide`: outcome → action). Times are epoch seconds passed in.

The breaker counts *evidence*, not answers: an outcome only tells something about the
receiver if its attempt started after the last outcome that was counted. Five deliveries
that were in flight together when the receiver went down are one failure, not five; a 500
that was on the wire while a later request already got a 2xx says nothing either. A sink with
a failure streak is probed — one request at a time, the first about a second after the first
failure, each gap a quarter of the outage so far (minus jitter), never more than the cooldown
— so the first probe after the receiver comes back is at most `min(cooldown, outage / 4)`
away, and its 2xx brings the sink's backlog forward at once.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from monitor.core.backoff import Schedule

__all__ = [
    "LEASE_MARGIN",
    "Action",
    "Breaker",
    "Delivered",
    "Evidence",
    "Failure",
    "Gone",
    "Outcome",
    "Pacer",
    "Rejected",
    "RetryLater",
    "Step",
    "attempt_bound",
    "decide",
    "lease_for",
    "pace",
    "probe_retry_at",
    "retry_delay",
    "wake_in",
]

FIRST_PROBE = 1.0
"""Seconds from the first failure of a streak to the first probe (less if the cooldown is)."""
PROBE_GROWTH = 0.25
"""Each probe gap is this fraction of how long the sink has been failing."""
PROBE_JITTER = 0.2
"""Each probe gap is shortened by up to this fraction (never lengthened: the cap holds)."""
LEASE_MARGIN = 30.0
"""Seconds a lease outlasts twice the delivery timeout: pacing, marking and a slow disk."""


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A transient failure. `after` is the receiver's Retry-After in seconds when it gave one:
    it throttles the whole sink (Slack's limit is per webhook, not per message)."""

    reason: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A permanent failure of this request (a 4xx): retrying it cannot succeed, so it is
    dead-lettered at once with the reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class Gone:
    """The receiver wants no more deliveries at all (410; Slack's 404/410 for a deleted or
    archived channel): the sink is disabled until its configuration changes."""

    reason: str


Outcome = Delivered | RetryLater | Rejected | Gone
"""How one attempt went, as a sink classified its receiver's answer."""


class Failure(enum.Enum):
    STALE = "stale"
    """The attempt started before the last counted outcome: it says nothing new."""
    COUNTED = "counted"
    OPENED = "opened"
    """This failure took the streak to the threshold: the sink is down."""


@dataclass
class Breaker:
    """One sink's failure streak; at `threshold` counted failures the sink is down: its rows
    wait (their schedules are not spent) and only probes go out."""

    threshold: int
    cooldown: float
    streak: int = 0
    since: float = 0.0
    """When the streak's first counted failure was recorded."""
    evidence: float = -math.inf
    """When the last counted outcome (failure or success) was recorded."""
    probe_at: float = 0.0
    probing: bool = False

    @property
    def open(self) -> bool:
        return self.streak >= self.threshold

    @property
    def failing(self) -> bool:
        return self.streak > 0

    def may_probe(self, now: float) -> bool:
        return self.failing and not self.probing and now >= self.probe_at

    def probe_started(self) -> None:
        self.probing = True

    def probe_ended(self) -> None:
        self.probing = False

    def next_probe_at(self) -> float | None:
        """When the next probe may go, or None when none is due (no streak, one in flight)."""
        return self.probe_at if self.failing and not self.probing else None

    def probe_in(self, now: float) -> float:
        return max(0.0, self.probe_at - now)

    def failed(self, *, started: float, now: float, u: float) -> Failure:
        """An attempt that started at `started` failed (transport or 5xx) at `now`; `u` is
        uniform in [0, 1) for the probe jitter."""
        if started < self.evidence:
            return Failure.STALE
        if not self.failing:
            self.since = now
        self.streak += 1
        self.evidence = now
        self.probe_at = now + self.probe_gap(now, u)
        return Failure.OPENED if self.streak == self.threshold else Failure.COUNTED

    def answered(self, *, started: float, now: float) -> bool:
        """The receiver answered (2xx, a 4xx, a Retry-After): True when that ends a failure
        streak, i.e. the sink is back and its waiting rows should go now."""
        if started < self.evidence:
            return False
        recovered = self.failing
        self.streak, self.evidence = 0, now
        return recovered

    def probe_gap(self, now: float, u: float) -> float:
        first = min(FIRST_PROBE, self.cooldown)
        gap = min(self.cooldown, max(first, PROBE_GROWTH * (now - self.since)))
        return gap * (1.0 - PROBE_JITTER * u)


@dataclass
class Pacer:
    """Starts at most one delivery per `interval`, and none before `paused_until`. Sinks that
    post to the same destination share one pacer (Slack's limit is per webhook URL)."""

    interval: float
    next_at: float = 0.0
    paused_until: float = 0.0

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def paused(self, now: float) -> bool:
        return self.paused_until > now

    def reserve(self, now: float) -> float:
        """Take the next start slot; seconds to wait for it."""
        start = max(now, self.next_at, self.paused_until)
        self.next_at = start + self.interval
        return start - now

    def slow_to(self, interval: float) -> None:
        """Another sink shares this destination: the stricter rate holds for both."""
        self.interval = max(self.interval, interval)


class Step(enum.StrEnum):
    """What becomes of an attempted (or a not yet attempted) row."""

    DELIVERED = "delivered"
    RETRY = "retry"
    """Back to pending until `at`, one step of its schedule spent."""
    DEAD = "dead"
    DISABLE = "disable"
    """Dead, and the sink disabled until its configuration changes."""
    UNCLAIM = "unclaim"
    """Back to pending until `at`, untried: its attempt is refunded."""
    PROBE_FAILED = "probe_failed"
    """Back to pending, refunded (a probe was early), no sooner than the next probe."""


class Notified(enum.StrEnum):
    """The `spmon_notifications_total` outcome of one attempt: a third set, neither a row's
    state (a failed attempt leaves the row pending) nor the action taken."""

    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"


class Evidence(enum.Enum):
    """What an outcome says about the receiver, for the breaker and the pacer."""

    NONE = "none"
    ANSWERED = "answered"
    THROTTLED = "throttled"
    """It answered and asked the whole sink to wait until `pause_until`."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Action:
    step: Step
    evidence: Evidence = Evidence.NONE
    at: float | None = None
    """RETRY, UNCLAIM, PROBE_FAILED: the row's next attempt. A failed probe's row also waits
    for the next probe (`probe_retry_at`), known only once the failure is counted."""
    reason: str = ""
    pause_until: float | None = None


def decide(
    outcome: Outcome,
    *,
    attempts: int,
    schedule: Schedule,
    now: float,
    u: float,
    probe_due: float | None = None,
) -> Action:
    """A row's fate from its attempt's outcome: `attempts` counts this one, `u` is uniform in
    [0, 1) for the retry jitter, `probe_due` is the row's own due time when it was a probe."""
    if isinstance(outcome, Delivered):
        return Action(Step.DELIVERED, Evidence.ANSWERED)
    if isinstance(outcome, Rejected):
        return Action(Step.DEAD, Evidence.ANSWERED, reason=outcome.reason)
    if isinstance(outcome, Gone):
        return Action(Step.DISABLE, reason=outcome.reason)
    after = outcome.after
    pause = None if after is None else now + after
    evidence = Evidence.FAILED if pause is None else Evidence.THROTTLED
    if probe_due is not None:
        at = max(probe_due, now)
        return Action(Step.PROBE_FAILED, evidence, at, outcome.reason, pause)
    delay = retry_delay(schedule, attempts, u, retry_after=after)
    if delay is None:
        reason = f"retries exhausted; last: {outcome.reason}"
        return Action(Step.DEAD, evidence, reason=reason, pause_until=pause)
    return Action(Step.RETRY, evidence, now + delay, outcome.reason, pause)


def pace(wait: float, *, now: float, lease: float) -> Action | None:
    """A claimed row waits `wait` seconds for its start slot; past a quarter of the lease (a
    Retry-After pause) it goes back untried instead of holding its lease."""
    return Action(Step.UNCLAIM, at=now + wait) if wait > lease / 4 else None


def retry_delay(
    schedule: Schedule, attempts: int, u: float, *, retry_after: float | None
) -> float | None:
    """Seconds until a failed row's next attempt: its schedule's step, or the receiver's
    Retry-After when that is later; None when the schedule is spent (dead letter)."""
    delay = schedule.delay(attempts, u)
    if delay is None:
        return None
    return max(delay, retry_after or 0.0)


def probe_retry_at(due: float, breaker: Breaker) -> float:
    """A failed probe's row keeps its own due time but goes no sooner than the next probe, so
    the next probe tries another row (one row the receiver chokes on cannot hold the sink)."""
    return max(due, breaker.probe_at)


def lease_for(timeout: float) -> float:
    """How long a claimed row stays ours: a paced wait of up to a quarter of the lease, the
    attempt (`attempt_bound`) and the marking all fit, whatever the configured timeout."""
    return 2.0 * timeout + LEASE_MARGIN


def attempt_bound(lease: float) -> float:
    """The dispatcher's own bound on one attempt: the sink's timeout plus half the margin,
    so it never cuts a delivery the sink's configured timeout still allows."""
    return lease / 2.0


def wake_in(
    now: float, moments: list[float], *, due: float | None, idle: float, floor: float = 0.01
) -> float:
    """Seconds an idle lane sleeps: until its next row falls `due` (at once if it already has)
    or the soonest future `moments` (a pause ending, a probe), at most `idle`."""
    ahead = [moment - now for moment in moments if moment > now]
    if due is not None:
        ahead.append(due - now)
    return max(floor, min([idle, *ahead]))
