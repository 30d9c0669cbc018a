"""Where a session is in its lifecycle, and how often that is worth a poll.

The API publishes no budget, so wasted calls are the real cost: a session closed and reviewed
weeks ago needs no poll a minute. Each session's interval follows its phase; the review
deadline keeps its exact wake-up whatever the phase says (`next_poll`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from monitor.core import schedule
from monitor.core.snapshot import Snapshot

__all__ = [
    "DEFAULT",
    "FIXED",
    "LIVE_STATUSES",
    "PROCESSING_STATUSES",
    "TERMINAL_STATUSES",
    "Intervals",
    "Lifecycle",
    "Phase",
    "assess",
    "interval_for",
    "next_poll",
    "phase_of",
    "track_settled",
]


class Phase(StrEnum):
    """A session's lifecycle phase, as the `spmon_sessions_by_phase` gauge labels it."""

    LIVE = "live"
    """In progress or in an incident, or its appointment is near: changes come by the minute."""
    AWAITING_REVIEW = "awaiting_review"
    """A review is required and not done: it changes when a reviewer gets to it."""
    PROCESSING = "processing"
    """The exam is over and its recording is being processed: whether a review is required
    is decided within hours, and a coordinator wants to know soon."""
    SCHEDULED = "scheduled"
    """Booked, far from its appointment (or a status we do not know that is not live)."""
    SETTLED = "settled"
    """Terminal status, and its review done or never required: it rarely changes again."""
    RETIRED = "retired"
    """Settled for longer than `retire_after`: no more polls (history kept)."""


def _statuses(*names: str) -> frozenset[str]:
    return frozenset(name.casefold() for name in names)


LIVE_STATUSES: Final = _statuses("Needs Proctor", "In Progress", "Active", "Incident")
""""Needs Proctor" is a student in the exam waiting for a proctor; the API calls in-progress
sessions "active" without naming the status, so both spellings count."""
PROCESSING_STATUSES: Final = _statuses("Processing")
TERMINAL_STATUSES: Final = _statuses("Closed", "Cancelled", "Canceled", "Approval Denied")
"""The guides call Closed and Cancelled terminal; a denied booking does not come back.
"Canceled" costs nothing to accept and keeps a US spelling from being polled forever."""


@dataclass(frozen=True, slots=True)
class Intervals:
    """Seconds between polls in each phase, and when a phase starts.

    Faster phases never poll slower than calmer ones (checked here), so a session's interval
    only grows as it settles."""

    live: float = 30.0
    awaiting_review: float = 300.0
    processing: float = 300.0
    scheduled: float = 3600.0
    settled: float = 21600.0
    retire_after: float = 30 * 86400.0
    """Settled this long, a session is retired."""
    live_window: float = 3 * 3600.0
    """A session whose appointment is this close, before or after, is live: students start
    late, and the recording is processed after the exam."""

    def __post_init__(self) -> None:
        polled = (self.live, self.awaiting_review, self.processing, self.scheduled, self.settled)
        if not all(math.isfinite(value) and value > 0 for value in polled):
            raise ValueError("phase intervals must be positive numbers of seconds")
        if not self.live <= self.awaiting_review <= self.settled:
            raise ValueError("phase intervals must not shrink: live <= awaiting_review <= settled")
        if not self.live <= self.scheduled <= self.settled:
            raise ValueError("phase intervals must not shrink: live <= scheduled <= settled")
        if not self.live <= self.processing <= self.settled:
            raise ValueError("phase intervals must not shrink: live <= processing <= settled")
        if not (self.retire_after > 0 and self.live_window >= 0):
            raise ValueError("retire_after must be positive and live_window not negative")


DEFAULT: Final = Intervals()
FIXED: Final = Intervals(retire_after=math.inf)
"""The phases when each session keeps its own interval: named for the gauge, never retired."""


def phase_of(
    snapshot: Snapshot | None,
    *,
    appointment: datetime | None,
    now: datetime,
    settled_since: datetime | None,
    intervals: Intervals = DEFAULT,
) -> Phase:
    """The phase of a session now.

    `snapshot` is the last good poll (None before the first): its review fields say whether a
    review is pending, so the rules' ReviewState adds nothing here. `appointment` comes from a
    discovery row or the session, when known. `settled_since` is when it was first seen
    settled (`track_settled` keeps it). A session never polled is live unless its
    appointment is far off: its first answer decides, and one fast poll costs less than
    missing an exam in progress.
    """
    status = (snapshot.status or "").casefold() if snapshot is not None else ""
    if status in LIVE_STATUSES:
        return Phase.LIVE
    if snapshot is not None and snapshot.review_pending:
        return Phase.AWAITING_REVIEW
    if status in PROCESSING_STATUSES:
        return Phase.PROCESSING
    if status in TERMINAL_STATUSES:
        retired = settled_since is not None and _age(now, settled_since) > intervals.retire_after
        return Phase.RETIRED if retired else Phase.SETTLED
    if appointment is not None:
        near = abs(_age(now, appointment)) <= intervals.live_window
        return Phase.LIVE if near else Phase.SCHEDULED
    return Phase.LIVE if snapshot is None else Phase.SCHEDULED


def track_settled(phase: Phase, previous: datetime | None, now: datetime) -> datetime | None:
    """When the session became settled, for the next `phase_of`: kept while it stays settled
    (or retired), set to `now` when it settles, cleared when it comes back to life."""
    if phase in (Phase.SETTLED, Phase.RETIRED):
        return previous if previous is not None else now
    return None


def interval_for(phase: Phase, intervals: Intervals, override: float | None) -> float | None:
    """Seconds to the next regular poll; None for a retired session, which is not polled.

    A per-watch override wins in every polled phase; retirement is not an interval, so it
    stops even an overridden session (a source reporting it changed brings it back)."""
    if phase is Phase.RETIRED:
        return None
    if override is not None:
        return override
    return {
        Phase.LIVE: intervals.live,
        Phase.AWAITING_REVIEW: intervals.awaiting_review,
        Phase.PROCESSING: intervals.processing,
        Phase.SCHEDULED: intervals.scheduled,
        Phase.SETTLED: intervals.settled,
    }[phase]


def next_poll(
    now: float, interval: float | None, u: float, *, jitter: float, deadline: float | None
) -> float | None:
    """Epoch seconds of the next poll: one (jittered) interval on, or the review deadline's
    wake-up if that comes first (`core.poll.deadline_after`), so an overdue review is noticed
    at its deadline and not up to one awaiting-review interval later. None: no poll at all."""
    due = None if interval is None else schedule.next_due(now, interval, u, jitter=jitter)
    if deadline is None:
        return due
    return deadline if due is None else min(due, deadline)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Where one session stands after a poll, and what that means for the next one."""

    phase: Phase
    settled_since: datetime | None
    """What the store keeps for the next `phase_of` (`track_settled`)."""
    interval: float | None
    """Seconds to the next regular poll; None: retired, not polled."""


def assess(
    snapshot: Snapshot | None,
    *,
    now: datetime,
    settled_since: datetime | None,
    override: float | None,
    intervals: Intervals | None,
    fixed: float,
) -> Lifecycle:
    """The phase of a session, its settled time and its interval, in one call for the poll
    step. `intervals` None is fixed polling: every session at `fixed` (its own interval), the
    phase only named, never retired (tools and tests that predate phases)."""
    appointment = snapshot.appointment if snapshot is not None else None
    phase = phase_of(
        snapshot,
        appointment=appointment,
        now=now,
        settled_since=settled_since,
        intervals=FIXED if intervals is None else intervals,
    )
    since = track_settled(phase, settled_since, now)
    if intervals is None:
        return Lifecycle(phase, since, fixed)
    return Lifecycle(phase, since, interval_for(phase, intervals, override))


def _age(now: datetime, since: datetime) -> float:
    return (now - since).total_seconds()
