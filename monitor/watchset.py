"""The watch set in memory: one Entry per session, when each is due, and who waits for the API.

The metrics collector reads it at scrape time; `/readyz` reads whether the first cycle is done.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor import aio
from monitor.core import buckets, rules, schedule
from monitor.core.keys import SessionKey
from monitor.core.phase import Phase
from monitor.core.snapshot import Snapshot
from monitor.metrics import WatchSummary

__all__ = ["Entry", "WatchSet"]


@dataclass(slots=True, eq=False)
class Entry:
    """A watched session in memory: the tracked fields, not the payload (that is in the store)."""

    key: SessionKey
    labels: Mapping[str, str]
    interval: float
    snapshot: Snapshot | None = None
    review: rules.ReviewState = rules.NO_REVIEW
    version: int = 0
    digest: int | None = None
    """Of the last valid body (`body_digest.digest_of`)."""
    failures: int = 0
    missing: bool = False
    last_poll_at: float | None = None
    override: float | None = None
    """The watch's own interval, which wins over its phase's."""
    settled_since: datetime | None = None
    phase: Phase = Phase.LIVE
    """As of its last poll (or restore): what the scheduler acts on and the gauge counts."""
    attempted: bool = False
    """Had its turn since start: polled (any outcome) or held back because the API is down."""
    due: schedule.Item[SessionKey] | None = None
    """Its live entry in the watch set's `heap` (the heap's index, kept here)."""
    parked_due: schedule.Item[SessionKey] | None = None
    """Its live entry in `parked`."""


class _OnEntries:
    """A heap's index kept on the entries (one of their two `due` fields) rather than in a
    dict of 100,000 keys of its own: only a watched session is ever in a heap."""

    __slots__ = ("_count", "_entries", "_field")

    def __init__(self, entries: Mapping[SessionKey, Entry], field: str) -> None:
        self._entries, self._field, self._count = entries, field, 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        entry = self._entries.get(key)  # type: ignore[call-overload]
        return entry is not None and getattr(entry, self._field) is not None

    def get(self, key: SessionKey) -> schedule.Item[SessionKey] | None:
        entry = self._entries.get(key)
        return None if entry is None else getattr(entry, self._field)

    def __setitem__(self, key: SessionKey, item: schedule.Item[SessionKey]) -> None:
        entry = self._entries[key]
        if getattr(entry, self._field) is None:
            self._count += 1
        setattr(entry, self._field, item)

    def pop(self, key: SessionKey, default: None) -> schedule.Item[SessionKey] | None:
        item = self.get(key)
        if item is not None:
            setattr(self._entries[key], self._field, None)
            self._count -= 1
        return item

    def __delitem__(self, key: SessionKey) -> None:
        if self.pop(key, None) is None:
            raise KeyError(key)


class WatchSet:
    """All watched sessions and when each is due.

    A session is in `heap` (waiting for its time) or `parked` (its time came while the API was
    down or refused the token: it waits for the API, keeping its due time for poll lag), or in
    neither while its poll runs. A parked session may also sit in `heap` at its next review
    deadline, so that overdue still follows the clock during an outage. A retired session is
    in neither: it stays an entry (counted, its history kept) until `revive` brings it back.
    """

    def __init__(
        self, clock: aio.Clock = aio.SYSTEM, *, by_labels: buckets.LabelBuckets | None = None
    ) -> None:
        self.entries: dict[SessionKey, Entry] = {}
        self.by_labels = by_labels
        """Set, the summary also counts reviews by these watch labels (`metrics.by_labels`)."""
        self.heap = schedule.DueHeap(_OnEntries(self.entries, "due"))
        self.parked = schedule.DueHeap(_OnEntries(self.entries, "parked_due"))
        self.clock = clock
        self._unattempted = 0

    def add(self, entry: Entry, due: float | None) -> None:
        """Watch `entry`, first due at `due`; None: retired, it has had its turn."""
        if entry.key in self.entries:  # a replaced entry takes its heap entries with it
            self.heap.discard(entry.key)
            self.parked.discard(entry.key)
        self.entries[entry.key] = entry
        if due is None:
            entry.attempted = True
        else:
            self.heap.push(entry.key, due)
        if not entry.attempted:
            self._unattempted += 1

    def remove(self, key: SessionKey) -> Entry | None:
        """Stop watching `key`. A poll of it still in flight finishes and commits (its history
        stays in the store), but `due` no longer schedules it again."""
        self.heap.discard(key)  # first: the heaps find their entries through `entries`
        self.parked.discard(key)
        entry = self.entries.pop(key, None)
        if entry is None:
            return None
        if not entry.attempted:
            self._unattempted -= 1
        return entry

    def relabel(
        self, key: SessionKey, labels: Mapping[str, str], override: float | None, *, now: float
    ) -> bool:
        """A watch's new labels and own interval (a reload); True when they changed. A shorter
        interval applies at once; a phase's comes with the next poll."""
        entry = self.entries[key]
        if entry.labels == labels and entry.override == override:
            return False
        entry.labels, entry.override = labels, override
        if override is not None and entry.last_poll_at is not None:
            entry.interval = override
            self.heap.pull_earlier(key, max(now, entry.last_poll_at + override))
        return True

    def schedule(self, key: SessionKey, due: float | None) -> None:
        """A watched session's next poll at `due`, or None: retired (out of every heap). A
        session removed meanwhile stays removed."""
        if key not in self.entries:
            return
        if due is not None:
            self.heap.push(key, due)
        else:
            self.heap.discard(key)
            self.parked.discard(key)

    def revive(self, key: SessionKey, now: float) -> bool:
        """A retired session a watch source reports changed: poll it now, and count its
        settled time afresh, so a session that is still settled retires again only after
        another `retire_after`. False when `key` is not a retired watch. The hook for watch
        sources (discovery); the poll loop's idle tick (at most 1 s) picks it up."""
        entry = self.entries.get(key)
        if entry is None or entry.phase is not Phase.RETIRED or key in self.heap:
            return False
        entry.settled_since = None
        entry.phase = Phase.SETTLED
        self.heap.push(key, now)
        return True

    def demand(self) -> float:
        """Polls per second the watch set asks for at its current phases (retired: none)."""
        return sum(
            1.0 / entry.interval
            for entry in self.entries.values()
            if entry.phase is not Phase.RETIRED
        )

    def attempted(self, entry: Entry) -> None:
        if not entry.attempted:
            entry.attempted = True
            self._unattempted -= 1

    @property
    def first_cycle_remaining(self) -> int:
        return self._unattempted

    def hold_due(self, horizon: float) -> list[tuple[Entry, float]]:
        """Every session due by `horizon`, out of both heaps (the caller parks it again), with
        the first time it was due; each counts as having had its turn."""
        held = []
        for key, due in self.heap.pop_due(horizon, len(self.heap)):
            parked_at = self.parked.discard(key)
            entry = self.entries[key]
            self.attempted(entry)
            held.append((entry, due if parked_at is None else min(due, parked_at)))
        return held

    def park(self, key: SessionKey, due: float, *, wake: float | None) -> None:
        """Hold `key` until the API is back, keeping its first due time; `wake` (its next
        review deadline) brings it back to be evaluated meanwhile."""
        if key not in self.entries:
            return
        if key not in self.parked:
            self.parked.push(key, due)
        if wake is not None:
            self.heap.push(key, wake)

    def take_probe(self, horizon: float) -> tuple[SessionKey, float] | None:
        """The longest-waiting parked session, out of both heaps: the next probe polls it."""
        picked = self.parked.pop_due(horizon, 1)
        if not picked:
            return None
        self.heap.discard(picked[0][0])
        return picked[0]

    def resume(self, now: float) -> int:
        """The API answers again: every parked session back into the heap at its own (past)
        due time, and sessions backed off by failures before the breaker opened are due one
        interval after their last try at the latest. Returns how many were parked."""
        moved = self.parked.pop_due(math.inf, len(self.parked))
        for key, due in moved:
            self.heap.push(key, due)
        for entry in self.entries.values():
            if entry.failures and not entry.missing and entry.last_poll_at is not None:
                self.heap.pull_earlier(entry.key, max(now, entry.last_poll_at + entry.interval))
        return len(moved)

    def summary(self) -> WatchSummary:
        now = self.clock.now()
        moment = datetime.fromtimestamp(now, UTC)
        by_status: dict[str, int] = {}
        by_phase = dict.fromkeys(Phase, 0)
        pending = overdue = 0
        oldest: datetime | None = None
        tally = self.by_labels.tally() if self.by_labels is not None else None
        for entry in self.entries.values():
            by_phase[entry.phase] += 1
            snap = entry.snapshot
            waiting = late = False
            if snap is not None:
                status = snap.status if snap.status is not None else "none"
                by_status[status] = by_status.get(status, 0) + 1
                waiting = snap.review_pending
                late = waiting and rules.is_overdue(snap, moment)
            if tally is not None:
                tally.add(entry.labels, waiting, overdue=late)
            if waiting:
                pending += 1
            if late and snap is not None:
                overdue += 1
                deadline = snap.review_by_date
                if deadline is not None and (oldest is None or deadline < oldest):
                    oldest = deadline
        dues = [due for due in (self.heap.peek(), self.parked.peek()) if due is not None]
        return WatchSummary(
            watched=len(self.entries),
            by_status=by_status,
            by_phase={str(phase): count for phase, count in by_phase.items()},
            reviews_pending=pending,
            reviews_overdue=overdue,
            oldest_overdue_age=(moment - oldest).total_seconds() if oldest else 0.0,
            poll_lag=max(0.0, now - min(dues)) if dues else 0.0,
            label_names=self.by_labels.names if self.by_labels is not None else (),
            by_labels=tally.result() if tally is not None else {},
        )
