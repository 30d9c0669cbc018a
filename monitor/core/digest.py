"""Digests, pure: the events a sink holds for one window, grouped into the messages a person
reads (counts of new overdue, resolved and changes; the worst items by lateness; "and N
more"), and when a digest sink's next batch is due.

A digest covers outbox rows, not events in the abstract: each `Group` keeps the ids of the
rows it stands for, so the dispatcher marks exactly those delivered when its one message is
accepted (one delivery, many rows, one transaction), and retries exactly those if not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.core.events import Event, EventType
from monitor.core.quiet import Schedule

__all__ = ["NO_PLAN", "Group", "Plan", "Policy", "due_at", "group", "group_title", "lateness"]

UNGROUPED = "(none)"
"""A group key's value when an event has no such label or field."""


@dataclass(frozen=True, slots=True)
class Policy:
    """`digest:` of one sink. window 0 batches only what is due together (a quiet-hours sink
    without a digest of its own: what was held goes out as one message)."""

    window: float = 120.0
    group_by: tuple[str, ...] = ()
    max_items: int = 10


@dataclass(frozen=True, slots=True)
class Group:
    """One digest message: the rows it covers and what a person reads of them."""

    key: tuple[tuple[str, str], ...]
    """(group_by name, value) pairs; empty when the sink does not group."""
    row_ids: tuple[int, ...]
    events: tuple[Event, ...]
    """Every event of the group, oldest first (a group of one is sent as a plain alert)."""
    overdue: int
    resolved: int
    changes: int
    other: int
    worst: tuple[Event, ...]
    """Up to max_items: overdue reviews by lateness (worst first), then the rest by time."""

    @property
    def more(self) -> int:
        return len(self.events) - len(self.worst)


_CHANGES = frozenset(
    {
        EventType.STATUS_CHANGED,
        EventType.REVIEW_REQUIRED_CHANGED,
        EventType.REVIEW_BY_DATE_CHANGED,
    }
)


def lateness(event: Event) -> float:
    """Seconds past the review deadline when the event was observed (0 if not late)."""
    snapshot = event.snapshot
    if snapshot is None or snapshot.review_by_date is None:
        return 0.0
    return max(0.0, (event.observed_at - snapshot.review_by_date).total_seconds())


def key_of(event: Event, by: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """A label of the watch first, then an attribute of the event's data of that name."""
    found = []
    for name in by:
        value = event.labels.get(name)
        if value is None:
            value = getattr(event, name, None) or getattr(event.snapshot, name, None)
        found.append((name, str(value) if value not in (None, "") else UNGROUPED))
    return tuple(found)


def group(rows: Iterable[tuple[int, Event]], policy: Policy) -> list[Group]:
    """The rows of one batch as digest messages, one per group, in order of first row."""
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[int, Event]]] = {}
    for row_id, event in sorted(rows, key=lambda pair: pair[0]):
        buckets.setdefault(key_of(event, policy.group_by), []).append((row_id, event))
    return [_group(key, members, policy.max_items) for key, members in buckets.items()]


def _group(key: tuple[tuple[str, str], ...], members: list[tuple[int, Event]], cap: int) -> Group:
    events = tuple(event for _, event in members)
    kinds = [event.type for event in events]
    overdue = kinds.count(EventType.REVIEW_OVERDUE)
    resolved = kinds.count(EventType.REVIEW_OVERDUE_RESOLVED)
    changes = sum(kind in _CHANGES for kind in kinds)
    # The worst first: overdue reviews by how late, then everything else, oldest first.
    ranked = sorted(
        range(len(events)),
        key=lambda i: (events[i].type is not EventType.REVIEW_OVERDUE, -lateness(events[i]), i),
    )
    return Group(
        key=key,
        row_ids=tuple(row_id for row_id, _ in members),
        events=events,
        overdue=overdue,
        resolved=resolved,
        changes=changes,
        other=len(events) - overdue - resolved - changes,
        worst=tuple(events[i] for i in ranked[:cap]),
    )


def group_title(found: Group) -> str:
    """`course BIO101: 3 new overdue, 1 resolved, 2 changes` (zero counts left out)."""
    counts = [
        (found.overdue, "new overdue"),
        (found.resolved, "resolved"),
        (found.changes, "change" if found.changes == 1 else "changes"),
        (found.other, "other" if found.other == 1 else "others"),
    ]
    said = ", ".join(f"{n} {what}" for n, what in counts if n) or "nothing"
    where = " · ".join(f"{name} {value}" for name, value in found.key)
    return f"{where}: {said}" if where else said


def due_at(*, created_at: float, next_attempt_at: float, window: float) -> float:
    """When a digest sink's row makes its batch due: a fresh row waits out the window from
    its creation (so what arrives together goes together); a retried or held row is due at
    its own time. A batch takes every row due by then."""
    return max(next_attempt_at, created_at + window)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one sink's lane sends: per event, or as digests; when it is quiet; where "and N
    more" points."""

    digest: Policy | None = None
    quiet: Schedule | None = None
    status_url: str | None = None


NO_PLAN = Plan()
