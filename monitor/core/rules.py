"""The review deadline state machine: overdue, repeated while it lasts, resolved once.

Overdue is a pure function of (snapshot, now): review required, not reviewed, deadline passed.
`ReviewState` remembers only what is needed to fire each event once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.core.events import EventType
from monitor.core.snapshot import Snapshot

__all__ = [
    "NO_REVIEW",
    "Policy",
    "ReviewState",
    "escalated_levels",
    "evaluate",
    "is_due_soon",
    "is_overdue",
    "next_check",
]

# Overdue means strictly past the deadline, so a check scheduled exactly at it would still
# see "not yet"; one millisecond later it is decided.
_AFTER = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Policy:
    overdue_repeat: timedelta | None = timedelta(hours=24)
    """Repeat `review.overdue` this often while it stays overdue; None never repeats."""
    due_soon: timedelta | None = None
    """Warn this long before the deadline with `review.due_soon`; None never warns."""
    escalate: tuple[timedelta, ...] = ()
    """Escalation levels, shortest first: a review still overdue this long after its
    deadline raises one `review.escalated` per level (level n = escalate[n - 1])."""


@dataclass(frozen=True, slots=True)
class ReviewState:
    overdue_since: datetime | None = None
    """When spmon first saw the review overdue; None when it is not overdue."""
    last_overdue_alert: datetime | None = None
    due_soon_for: datetime | None = None
    """The deadline a due-soon warning was already sent for (a moved deadline warns again)."""
    escalated: int = 0
    """Escalation levels already raised for this overdue spell (reset when it resolves)."""


NO_REVIEW = ReviewState()
"""The state of a review nobody has alerted on; shared, since most sessions are in it."""


def is_overdue(snapshot: Snapshot, now: datetime) -> bool:
    deadline = snapshot.review_by_date
    return snapshot.review_pending and deadline is not None and deadline < now


def is_due_soon(snapshot: Snapshot, now: datetime, window: timedelta | None) -> bool:
    deadline = snapshot.review_by_date
    if window is None or deadline is None or not snapshot.review_pending:
        return False
    return deadline - window <= now <= deadline


def evaluate(
    snapshot: Snapshot, state: ReviewState, now: datetime, policy: Policy
) -> tuple[ReviewState, tuple[EventType, ...]]:
    """The next state and the events entering it causes. Escalations come last, one
    `REVIEW_ESCALATED` per level newly reached, in level order (`escalated_levels` names
    them); a review resolved before a level's time never raises it."""
    if is_overdue(snapshot, now):
        state, found = _while_overdue(state, now, policy)
        return _escalate(snapshot, state, now, policy, found)
    events: list[EventType] = []
    if state.overdue_since is not None:
        events.append(EventType.REVIEW_OVERDUE_RESOLVED)
        state = replace(state, overdue_since=None, last_overdue_alert=None, escalated=0)
    if (
        is_due_soon(snapshot, now, policy.due_soon)
        and state.due_soon_for != snapshot.review_by_date
    ):
        events.append(EventType.REVIEW_DUE_SOON)
        state = replace(state, due_soon_for=snapshot.review_by_date)
    return state, tuple(events)


def _while_overdue(
    state: ReviewState, now: datetime, policy: Policy
) -> tuple[ReviewState, tuple[EventType, ...]]:
    if state.overdue_since is None:
        return replace(state, overdue_since=now, last_overdue_alert=now), (
            EventType.REVIEW_OVERDUE,
        )
    repeat = policy.overdue_repeat
    last = state.last_overdue_alert or state.overdue_since
    if repeat is not None and now >= last + repeat:
        return replace(state, last_overdue_alert=now), (EventType.REVIEW_OVERDUE,)
    return state, ()


def _escalate(
    snapshot: Snapshot,
    state: ReviewState,
    now: datetime,
    policy: Policy,
    events: tuple[EventType, ...],
) -> tuple[ReviewState, tuple[EventType, ...]]:
    deadline = snapshot.review_by_date
    assert deadline is not None  # overdue
    reached = sum(1 for after in policy.escalate if now >= deadline + after)
    if reached <= state.escalated:
        return state, events
    raised = (EventType.REVIEW_ESCALATED,) * (reached - state.escalated)
    return replace(state, escalated=reached), (*events, *raised)


def escalated_levels(before: ReviewState, after: ReviewState) -> range:
    """The levels an `evaluate` from `before` to `after` raised, in order."""
    return range(before.escalated + 1, after.escalated + 1)


def next_check(
    snapshot: Snapshot, state: ReviewState, now: datetime, policy: Policy
) -> datetime | None:
    """The earliest future instant at which `evaluate` could answer differently on the same data.

    The scheduler polls then, even if no regular poll is due, so a deadline is noticed at the
    deadline and not up to one poll interval later.
    """
    deadline = snapshot.review_by_date
    if deadline is None or not snapshot.review_pending:
        return None
    if state.overdue_since is not None:
        later = []
        if policy.overdue_repeat is not None:
            later.append((state.last_overdue_alert or state.overdue_since) + policy.overdue_repeat)
        if state.escalated < len(policy.escalate):  # the next level, on time
            later.append(deadline + policy.escalate[state.escalated])
        return min(later, default=None)
    candidates = [deadline + _AFTER]
    if policy.due_soon is not None and state.due_soon_for != deadline:
        candidates.append(deadline - policy.due_soon)
    future = [moment for moment in candidates if moment > now]
    return min(future) if future else None
