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

__all__ = ["CACHE_CAPPED", "NONE", "OTHER", "LabelBuckets", "Tally"]

NONE: Final = "none"
"""A session whose watch lacks the label (or has it empty), like `spmon_sessions`' status."""
OTHER: Final = "other"
"""Values past the cap."""

CACHE_CAPPED: Final = 4096
"""Values past the cap that one scrape remembers (as many as there are shared label sets)."""

Bucket = tuple[str, ...]
"""One value per configured label name, in the configured order."""
Raw = str | None | tuple[str | None, ...]
"""A watch's own values of the labels: a str (or None) for one label, a tuple for several."""


class LabelBuckets:
    """The values admitted so far, per label; lives as long as the process."""

    def __init__(self, names: Sequence[str], *, cap: int) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self.cap = cap
        self._own: tuple[dict[str, None], ...] = tuple({} for _ in self.names)
        self._seen: dict[Bucket, None] = {}
        """Every bucket a session has fallen in: each keeps its series (at 0 when empty)."""

    def bucket(self, values: tuple[str | None, ...]) -> tuple[Bucket, bool]:
        """The bucket of one watch's values of the labels (None: it lacks one), and whether
        any of them is past its cap (so it is counted as `other`)."""
        found: list[str] = []
        capped = False
        for own, value in zip(self._own, values, strict=True):
            if not value:
                found.append(NONE)
            elif value in own:
                found.append(value)
            elif len(own) < self.cap:
                own[value] = None
                found.append(value)
            else:
                found.append(OTHER)
                capped = True
        bucket = tuple(found)
        self._seen[bucket] = None
        return bucket, capped

    def tally(self) -> Tally:
        """A fresh count for one scrape, every bucket seen so far at 0."""
        return Tally(self)

    def seen(self) -> list[Bucket]:
        return list(self._seen)


class Tally:
    """Pending and overdue reviews per bucket, counted in one pass over the watch set.

    Each watch costs a lookup of its raw values (a str for one label) in a cache of the
    values already met, so a scrape allocates nothing per session, whether the watches share
    their label dicts (`core.watches.shared_labels`) or each has its own. Values past the cap
    are cached only while it holds fewer than `CACHE_CAPPED`, so it stays bounded however many
    there are (a label per student); the rest are worked out again for each session."""

    __slots__ = ("_buckets", "_cache", "_counts", "_name")

    def __init__(self, buckets: LabelBuckets) -> None:
        self._buckets = buckets
        self._name = buckets.names[0] if len(buckets.names) == 1 else None
        self._counts: dict[Bucket, list[int]] = {b: [0, 0] for b in buckets.seen()}
        self._cache: dict[Raw, list[int]] = {}

    def add(self, labels: Mapping[str, str], pending: bool, *, overdue: bool) -> None:
        """One watched session (counted or not, its values are admitted)."""
        raw: Raw = (
            labels.get(self._name)
            if self._name is not None
            else tuple(map(labels.get, self._buckets.names))
        )
        counts = self._cache.get(raw)
        if counts is None:
            counts = self._resolve(raw)
        if pending:
            counts[0] += 1
            if overdue:
                counts[1] += 1

    def _resolve(self, raw: Raw) -> list[int]:
        values = raw if isinstance(raw, tuple) else (raw,)
        bucket, capped = self._buckets.bucket(values)
        counts = self._counts.setdefault(bucket, [0, 0])
        if not capped or len(self._cache) < CACHE_CAPPED:
            self._cache[raw] = counts
        return counts

    def result(self) -> dict[Bucket, tuple[int, int]]:
        """(pending, overdue) per bucket, in the order the buckets were first seen."""
        return {bucket: (counts[0], counts[1]) for bucket, counts in self._counts.items()}
