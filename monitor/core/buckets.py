"""Which watch-label values get series of their own in the per-label review gauges.

`metrics.by_labels: [course]` splits the pending and overdue counts by the watches' `course`
label. Label values are open (a CSV export can carry hundreds of courses), so each label has a
cap: values get their own series first come, in watch-set order at the scrape that first sees
them, and keep it until the process restarts; past the cap, new values count as `other`. Once
given, a series never turns into `other` (no flapping as counts move), and a value whose
sessions all went keeps its series at 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["NONE", "OTHER", "LabelBuckets", "Tally"]

NONE: Final = "none"
"""A session whose watch lacks the label (or has it empty), like `spmon_sessions`' status."""
OTHER: Final = "other"
"""Values past the cap."""

Bucket = tuple[str, ...]
"""One value per configured label name, in the configured order."""


class LabelBuckets:
    """The values admitted so far, per label; lives as long as the process."""

    def __init__(self, names: Sequence[str], *, cap: int) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self.cap = cap
        self._own: tuple[dict[str, None], ...] = tuple({} for _ in self.names)
        self._seen: dict[Bucket, None] = {}
        """Every bucket a session has fallen in: each keeps its series (at 0 when empty)."""

    def bucket(self, labels: Mapping[str, str]) -> Bucket:
        found = tuple(
            self._admit(own, labels.get(name))
            for own, name in zip(self._own, self.names, strict=True)
        )
        self._seen[found] = None
        return found

    def tally(self) -> Tally:
        """A fresh count for one scrape, every bucket seen so far at 0."""
        return Tally(self)

    def seen(self) -> list[Bucket]:
        return list(self._seen)

    def _admit(self, own: dict[str, None], value: str | None) -> str:
        if not value:
            return NONE
        if value in own:
            return value
        if len(own) < self.cap:
            own[value] = None
            return value
        return OTHER


class Tally:
    """Pending and overdue reviews per bucket, counted in one pass over the watch set.

    Watches share their label dicts (`core.watches.shared_labels`), so a bucket is worked out
    once per distinct dict per scrape, keyed by its id: every dict is held by a watch for the
    whole (synchronous) pass, so no id is reused within it."""

    __slots__ = ("_buckets", "_by_id", "_counts")

    def __init__(self, buckets: LabelBuckets) -> None:
        self._buckets = buckets
        self._counts: dict[Bucket, list[int]] = {b: [0, 0] for b in buckets.seen()}
        self._by_id: dict[int, list[int]] = {}

    def add(self, labels: Mapping[str, str], *, pending: bool, overdue: bool) -> None:
        """One watched session (counted or not, its values are admitted)."""
        counts = self._by_id.get(id(labels))
        if counts is None:
            bucket = self._buckets.bucket(labels)
            counts = self._by_id[id(labels)] = self._counts.setdefault(bucket, [0, 0])
        if pending:
            counts[0] += 1
            if overdue:
                counts[1] += 1

    def result(self) -> dict[Bucket, tuple[int, int]]:
        """(pending, overdue) per bucket, in the order the buckets were first seen."""
        return {bucket: (counts[0], counts[1]) for bucket, counts in self._counts.items()}
