"""The read model as values: what a status page, the JSON API and `spmon sessions` show.

Pure: rows the store read and runtime facts the service holds come in, views go out, and
`now` is an argument. Overdue is decided by `rules.is_overdue`, the rule the alerts use, so a
page can never disagree with an alert. What cannot be known is None, never a reassuring zero:
a session never seen has no status and no overdue verdict, and a read-only reader (no running
service) knows no phase, sink state or API health.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.core import rules
from monitor.core.events import EventType, Value
from monitor.core.keys import SessionKey
from monitor.core.outbox import OutboxState
from monitor.core.phase import Phase
from monitor.core.snapshot import Snapshot

__all__ = [
    "DUE_SOON",
    "UNKNOWN",
    "ApiHealth",
    "Delivery",
    "History",
    "Page",
    "SessionQuery",
    "SessionRow",
    "SessionView",
    "SinkHealth",
    "Sort",
    "Summary",
    "Transition",
    "select",
    "summarise",
    "view_of",
]

UNKNOWN = "unknown"
"""A sink's state when no running service can tell it."""
DUE_SOON = timedelta(hours=24)
"""The summary's "due soon" window."""


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as the state file holds it: its watch (labels, source) and last state.

    `snapshot` is None for a session never observed; `source` is None for a session no
    longer watched (its row outlives the watch)."""

    key: SessionKey
    labels: Mapping[str, str]
    source: str | None
    snapshot: Snapshot | None
    review: rules.ReviewState = rules.NO_REVIEW
    missing: bool = False
    failures: int = 0
    last_poll_at: float | None = None
    last_outcome: str | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    """One session for people and machines: its fields, phase and review verdict at `now`."""

    key: SessionKey
    labels: Mapping[str, str]
    source: str | None
    seen: bool
    """Observed at least once; False means every field below is unknown, not empty."""
    status: str | None
    review_required: bool | None
    reviewed: bool | None
    review_by_date: datetime | None
    url: str | None
    phase: Phase | None
    """None: unknown (read from a state file with no running service)."""
    overdue: bool | None
    """`rules.is_overdue` at `now`; None for a session never seen."""
    overdue_since: datetime | None
    """When spmon first saw it overdue (when its alert fired)."""
    lateness: float | None
    """Seconds past the review deadline while overdue, else None."""
    missing: bool
    last_poll_at: datetime | None
    last_outcome: str | None

    @property
    def sid(self) -> str:
        return self.key.session_sid


@dataclass(frozen=True, slots=True)
class Transition:
    """One event the poller observed for a session, whether or not any sink took it."""

    event_id: str
    session_sid: str
    type: EventType
    observed_at: datetime
    field: str | None = None
    previous: Value = None
    current: Value = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event's delivery to one sink: the outbox row, as it stands."""

    event_id: str
    sink: str
    event_type: str
    state: OutboxState
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    """Pending rows only: when the next attempt is due."""


@dataclass(frozen=True, slots=True)
class History:
    """A session's history: its transitions oldest first, and each delivery of them."""

    session: SessionView | None
    transitions: tuple[Transition, ...]
    deliveries: tuple[Delivery, ...]

    def deliveries_of(self, event_id: str) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if d.event_id == event_id)


@dataclass(frozen=True, slots=True)
class SinkHealth:
    name: str
    state: str
    """up, paused, down, disabled, quiet, or `UNKNOWN` with no running service."""
    pending: int
    dead: int


@dataclass(frozen=True, slots=True)
class ApiHealth:
    """None everywhere means unknown (no running service), never "fine"."""

    auth_failing: bool | None = None
    breaker_open: bool | None = None
    last_success: datetime | None = None
    token_expiry: datetime | None = None
    token_renews: bool | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    at: datetime
    running: bool
    """A running service answered (phases, sinks and API health are live, not unknown)."""
    watched: int
    unseen: int
    """Watched but never observed: their status and overdue state are unknown."""
    by_status: Mapping[str, int]
    by_phase: Mapping[str, int] | None
    pending: int
    overdue: int
    """Overdue among the sessions seen: with `unseen` > 0 it is a floor, not the count."""
    due_soon: int
    """Pending reviews whose deadline falls within `DUE_SOON` from `at`."""
    oldest_overdue: float | None
    """Seconds the most overdue review is past its deadline."""
    sinks: tuple[SinkHealth, ...]
    api: ApiHealth
    oldest_pending_delivery: datetime | None = None

    @property
    def overdue_known(self) -> bool:
        """Whether `overdue` is the count (every watched session was seen) or only a floor."""
        return self.unseen == 0


class Sort(StrEnum):
    LATENESS = "lateness"
    """Most overdue first; then the rest by deadline, soonest first."""
    DEADLINE = "deadline"
    """Soonest review deadline first; sessions without one last."""


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """Filters (all must hold), a sort and a page. Filters on unknown values never match:
    `overdue=False` does not list sessions never seen."""

    phase: Phase | None = None
    overdue: bool | None = None
    due_within: float | None = None
    """Pending reviews due within this many seconds from now (not yet overdue)."""
    status: str | None = None
    """Case-insensitive."""
    labels: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None
    """Case-insensitive substring of a SID (session, exam, install) or a label value."""
    sort: Sort = Sort.LATENESS
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if self.limit < 0 or self.offset < 0:
            raise ValueError("limit and offset must not be negative")
        if self.due_within is not None and self.due_within < 0:
            raise ValueError("due_within must not be negative")


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[SessionView, ...]
    total: int
    """How many matched, before the page was cut."""
    offset: int
    limit: int


def view_of(row: SessionRow, *, now: datetime, phase: Phase | None) -> SessionView:
    s = row.snapshot
    overdue = None if s is None else rules.is_overdue(s, now)
    late = None
    if overdue and s is not None and s.review_by_date is not None:
        late = (now - s.review_by_date).total_seconds()
    polled = (
        None if row.last_poll_at is None else datetime.fromtimestamp(row.last_poll_at, now.tzinfo)
    )
    return SessionView(
        key=row.key,
        labels=row.labels,
        source=row.source,
        seen=s is not None,
        status=None if s is None else s.status,
        review_required=None if s is None else s.review_required,
        reviewed=None if s is None else s.reviewed,
        review_by_date=None if s is None else s.review_by_date,
        url=None if s is None else s.link(row.key),
        phase=phase,
        overdue=overdue,
        overdue_since=row.review.overdue_since if overdue else None,
        lateness=late,
        missing=row.missing,
        last_poll_at=polled,
        last_outcome=row.last_outcome,
    )


def matches(view: SessionView, query: SessionQuery, now: datetime) -> bool:
    if query.phase is not None and view.phase is not query.phase:
        return False
    if query.overdue is not None and view.overdue is not query.overdue:
        return False
    if query.due_within is not None and not _due_within(view, now, query.due_within):
        return False
    if query.status is not None and (view.status or "").casefold() != query.status.casefold():
        return False
    if any(view.labels.get(k) != v for k, v in query.labels.items()):
        return False
    return query.text is None or _has_text(view, query.text.casefold())


def _due_within(view: SessionView, now: datetime, seconds: float) -> bool:
    deadline = view.review_by_date
    if view.overdue is not False or deadline is None or view.reviewed is True:
        return False
    return view.review_required is True and now <= deadline <= now + timedelta(seconds=seconds)


def _has_text(view: SessionView, needle: str) -> bool:
    haystack = (*view.key, *view.labels.values())
    return any(needle in item.casefold() for item in haystack)


def sort_key(view: SessionView, sort: Sort) -> tuple[object, ...]:
    """A total order (the session SID breaks ties), so pages never overlap or skip."""
    deadline = view.review_by_date.timestamp() if view.review_by_date is not None else None
    by_deadline = (deadline is None, deadline or 0.0)
    if sort is Sort.LATENESS:
        late = view.lateness
        return (late is None, -(late or 0.0), *by_deadline, view.sid)
    return (*by_deadline, view.sid)


def select(views: Iterable[SessionView], query: SessionQuery, now: datetime) -> Page:
    chosen = sorted(
        (view for view in views if matches(view, query, now)),
        key=lambda view: sort_key(view, query.sort),
    )
    items = tuple(chosen[query.offset : query.offset + query.limit])
    return Page(items, len(chosen), query.offset, query.limit)


def summarise(
    views: Sequence[SessionView],
    *,
    now: datetime,
    running: bool,
    sinks: Sequence[SinkHealth],
    api: ApiHealth,
    oldest_pending_delivery: datetime | None = None,
) -> Summary:
    by_status: dict[str, int] = {}
    by_phase: dict[str, int] = dict.fromkeys(map(str, Phase), 0)
    unseen = pending = overdue = due_soon = 0
    oldest: float | None = None
    for view in views:
        if view.phase is not None:
            by_phase[view.phase] += 1
        if not view.seen:
            unseen += 1
            continue
        status = view.status if view.status is not None else "none"
        by_status[status] = by_status.get(status, 0) + 1
        if view.review_required is True and view.reviewed is not True:
            pending += 1
        if view.overdue:
            overdue += 1
            oldest = max(oldest or 0.0, view.lateness or 0.0)
        elif _due_within(view, now, DUE_SOON.total_seconds()):
            due_soon += 1
    return Summary(
        at=now,
        running=running,
        watched=len(views),
        unseen=unseen,
        by_status=by_status,
        by_phase=by_phase if running else None,
        pending=pending,
        overdue=overdue,
        due_soon=due_soon,
        oldest_overdue=oldest,
        sinks=tuple(sinks),
        api=api,
        oldest_pending_delivery=oldest_pending_delivery,
    )


def still_fresh(built_at: datetime, now: datetime, *, keep: timedelta) -> bool:
    """Views built at `built_at` may answer again at `now`: less than `keep` later, and not
    from a moment after `now` (a clock set back builds anew)."""
    return built_at <= now < built_at + keep
