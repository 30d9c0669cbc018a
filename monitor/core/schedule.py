"""When each watched session is due next. Times are epoch seconds passed in; nothing sleeps here."""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

__all__ = ["DueHeap", "Index", "first_due", "next_due", "retry_due"]

K = TypeVar("K", bound=Hashable)
Item = tuple[float, K]


class Index(Protocol[K]):
    """Where a heap finds each key's live entry: a dict of its own by default; the watch set
    keeps it on its entries instead (one dict of 100,000 keys fewer)."""

    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
    def get(self, key: K, /) -> Item[K] | None: ...
    def __setitem__(self, key: K, item: Item[K], /) -> None: ...
    def __delitem__(self, key: K, /) -> None: ...
    def pop(self, key: K, default: None, /) -> Item[K] | None: ...


class DueHeap(Generic[K]):
    """A min-heap of (due, key) with one live entry per key.

    Re-pushing a key supersedes its old entry lazily (the stale tuple is skipped when it surfaces),
    which keeps push O(log n) without searching the heap. A key's live entry is the very tuple
    its last push made, so a stale one is told apart by identity, and the heap is rebuilt from
    the live ones once stale tuples pass a quarter of them: re-pushing 100,000 keys (`once`, a
    resume after an outage) would otherwise leave 100,000 dead tuples, 10 MB, until each one's
    old time came.
    """

    __slots__ = ("_due", "_heap")

    def __init__(self, index: Index[K] | None = None) -> None:
        self._heap: list[Item[K]] = []
        self._due: Index[K] = {} if index is None else index

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def push(self, key: K, due: float) -> None:
        item = (due, key)
        if self._due.get(key) is not None:
            self._compact()
        self._due[key] = item
        heapq.heappush(self._heap, item)

    def pull_earlier(self, key: K, due: float) -> None:
        """Move `key` to `due` if that is sooner than its current time (deadline wake-ups)."""
        current = self._due.get(key)
        if current is not None and due < current[0]:
            self.push(key, due)

    def discard(self, key: K) -> float | None:
        """Take `key` out; its due time, or None when it was not in."""
        item = self._due.pop(key, None)
        if item is None:
            return None
        self._compact()
        return item[0]

    def peek(self) -> float | None:
        """Due time of the earliest live entry."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, limit: int) -> list[tuple[K, float]]:
        """Up to `limit` (key, due) pairs whose time has come, earliest first; they leave the heap."""
        out: list[tuple[K, float]] = []
        while len(out) < limit:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                break
            due, key = heapq.heappop(self._heap)
            del self._due[key]
            out.append((key, due))
        return out

    def _drop_stale(self) -> None:
        heap, due = self._heap, self._due
        while heap and due.get(heap[0][1]) is not heap[0]:
            heapq.heappop(heap)

    def _compact(self) -> None:
        """Rebuild from the live tuples once the stale ones are too many (an O(n) pass every
        n/4 supersessions: O(1) each, amortized)."""
        heap, due = self._heap, self._due
        if len(heap) - len(due) <= len(due) // 4 + 1024:
            return
        live = [item for item in heap if due.get(item[1]) is item]
        heapq.heapify(live)
        self._heap = live


def first_due(now: float, interval: float, u: float) -> float:
    """Spread first polls uniformly over one interval so 10,000 watches do not fire together.

    `u` is a uniform random number in [0, 1) supplied by the caller.
    """
    return now + interval * u


def next_due(now: float, interval: float, u: float, *, jitter: float = 0.1) -> float:
    """The next regular poll: one interval on, ± `jitter` of it so polls stay spread."""
    return now + interval * (1.0 + jitter * (2.0 * u - 1.0))


def retry_due(now: float, interval: float, failures: int, u: float, *, cap: float = 300.0) -> float:
    """After `failures` consecutive failed polls, wait longer (full jitter, at most `cap`).

    Never sooner than half an interval, so a failure does not turn into a burst of polls; for
    intervals above twice the cap, that floor wins over the cap.
    """
    ceiling = min(cap, max(interval, 1.0) * 2.0 ** min(failures, 16))
    return now + max(interval / 2.0, ceiling * u)
