"""How sessions join the watch set: at start, at a reload and when discovery finds them.

Each resumes from what the store remembers of it (no re-baselining, no first sighting told
again), and its first poll is spread over one interval of its phase so 100,000 watches do
not fire together.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from monitor import aio
from monitor.core import poll as decide
from monitor.core.body_digest import memory_digest
from monitor.core.keys import SessionKey
from monitor.store import SessionRecord, SessionStore
from monitor.watchset import Entry, WatchSet

__all__ = ["RESUME_CHUNK", "Joining", "Wanted"]

Wanted = tuple[SessionKey, Mapping[str, str], float | None]
"""A watch as the poller takes it: key, labels, its own interval (None: by phase)."""
RESUME_CHUNK = 5000
"""Sessions read back from the store at a time: 100,000 records loaded at once would be most
of a restart's peak memory."""


class Joining:
    def __init__(
        self,
        *,
        store: SessionStore,
        watchset: WatchSet,
        first_interval: Callable[[float | None], float],
        rules: decide.Rules,
        clock: aio.Clock,
        rng: random.Random,
    ) -> None:
        self.store, self.watchset, self.first_interval = store, watchset, first_interval
        self.rules, self.clock, self.rng = rules, clock, rng

    async def rewatch(
        self, watches: Sequence[Wanted], *, add_only: bool = False
    ) -> tuple[int, int, int]:
        """Make the watch set `watches` while polls run (a reload): new sessions resume from
        whatever the store remembers of them, removed ones stop being scheduled, changed
        labels and intervals apply from the next poll. With `add_only` (discovery), sessions
        not in `watches` stay. Returns (added, removed, changed)."""
        entries = self.watchset.entries
        removed: list[SessionKey] = []
        if not add_only:
            wanted = {key for key, _, _ in watches}
            removed = [key for key in entries if key not in wanted]
            del wanted
        for key in removed:
            self.watchset.remove(key)
        new = [w for w in watches if w[0] not in entries]
        added = len(new)
        now = self.clock.now()
        changed = sum(self.watchset.relabel(*w, now=now) for w in watches if w[0] in entries)
        await self.resume(new, now)
        return added, len(removed), changed

    async def resume(self, watches: list[Wanted], now: float) -> int:
        """Add `watches`, each from what the store remembers of it; how many it remembered.
        The list is taken over: each chunk leaves it once its entries are made, so that at a
        restart 100,000 watch tuples do not sit beside the 100,000 entries made from them."""
        restored = 0
        while watches:
            chunk = watches[:RESUME_CHUNK]
            del watches[:RESUME_CHUNK]
            stored = await self.store.load([key.session_sid for key, _, _ in chunk])
            restored += len(stored)
            self._add(chunk, {record.key: record for record in stored}, now)
            del chunk, stored  # not held through the next chunk's read
        return restored

    def _add(
        self, watches: Sequence[Wanted], stored: Mapping[SessionKey, SessionRecord], now: float
    ) -> None:
        for key, labels, override in watches:
            entry = Entry(key, labels, self.first_interval(override), override=override)
            if (record := stored.get(key)) is not None:
                _restore_entry(entry, record)
            self.watchset.add(entry, self._first_due(entry, now))

    def _first_due(self, entry: Entry, now: float) -> float | None:
        # The stored settled time is kept as it is: a settled time first set here would stay
        # in memory only (the first poll of an unchanged body commits nothing).
        life = decide.lifecycle(entry, entry.snapshot, now, self.rules)
        entry.phase = life.phase
        if life.interval is None:
            return None
        entry.interval = life.interval
        return decide.first_due(entry, now, self.rng.random(), self.rules)


def _restore_entry(entry: Entry, record: SessionRecord) -> None:
    entry.snapshot = record.snapshot
    entry.review = record.review
    entry.version = record.version
    entry.digest = memory_digest(record.digest)
    entry.failures = record.failures
    entry.missing = record.missing
    entry.last_poll_at = record.last_poll_at
    entry.settled_since = record.settled_since
