"""What is watched right now: the store's active watches, applied to the running poller.

Every configured source is reconciled into the store at start and at each good reload; each
session a discovery walk finds is added to it as found, under its discovery source. Listed
watches win: a session both listed and discovered keeps the labels and interval its list
gives. Discovered sessions stay watched when they drop out of a list, across restarts too:
a discovery source never removes (only unconfiguring it does).

With replicas (PostgreSQL), the store holds every shard's watches and memory only those of
the shards this replica leases (`mine`): `reshard` applies a lease change, adding a gained
shard's watches (first polls spread over their interval) and dropping a lost one's from
memory only, as the watches stay in the store for the replica that owns them now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from operator import attrgetter

import structlog

from monitor import aio, watchsync
from monitor.core.keys import SessionKey
from monitor.core.shards import shard_of
from monitor.core.watches import Changes, Watch
from monitor.discoverer import Walk
from monitor.poll_step import PollStep, Wanted
from monitor.settings import Settings
from monitor.sources import UrlReader
from monitor.store import WatchStore

__all__ = ["Watching"]

log = structlog.get_logger("spmon.watching")

Readers = Mapping[str, UrlReader]


class Watching:
    """The watch set's one copy in memory is the poll step's: the store holds the rest, so
    100,000 watches are not kept twice over (the source of each is in the store)."""

    def __init__(
        self,
        settings: Settings,
        step: PollStep,
        *,
        store: WatchStore,
        readers: Readers,
        readers_for: Callable[[Settings], Readers],
        clock: aio.Clock = aio.SYSTEM,
    ) -> None:
        self.settings = settings
        """The configuration whose watches apply (the last one a reload accepted)."""
        self.step, self.store, self.clock = step, store, clock
        self.readers, self.readers_for = readers, readers_for
        self._changing = asyncio.Lock()
        """One change at a time: a reload reads the store, then rewatches; an API add or a
        discovery find landing in between would be undone by that rewatch."""
        self.mine: Callable[[SessionKey], bool] | None = None
        """With replicas: whether a session is in a shard this replica holds (None: all are)."""

    def watched(self, key: SessionKey) -> bool:
        """Watched now; the resender ends the alerts of the others. A session of another
        replica's shard counts as watched: that replica ends its alerts if need be."""
        return key in self.step.watchset.entries or (self.mine is not None and not self.mine(key))

    def wanted(self, watches: Iterable[Watch]) -> list[Wanted]:
        """The watches memory takes: all of them, or with replicas those of our shards."""
        fixed, mine = self.settings.poll.fixed, self.mine
        return [
            (w.key, w.labels, w.interval if w.interval is not None else fixed)
            for w in watches
            if mine is None or mine(w.key)
        ]

    async def reshard(self, retaken: Container[int] = ()) -> dict[str, int]:
        """The leases changed: memory becomes the stored watches of the shards held now.
        Sessions of `retaken` shards (held again under a new epoch: another replica may have
        polled them meanwhile) are dropped first, so they resume from the store."""
        async with self._changing:
            watchset = self.step.watchset
            for key in [k for k in watchset.entries if shard_of(k.session_sid) in retaken]:
                watchset.remove(key)
            active = await self.store.active_watches()
            summary = await self._rewatch(self.wanted(active.values()))
        log.info("watches.resharded", **summary)
        return summary

    async def apply(self, settings: Settings) -> dict[str, int]:
        """A reload: every source read again and reconciled into the store, then its active
        watches applied while polls run. URL sources keep their readers (and what they
        remember for conditional GETs) unless their configuration changed."""
        if settings.sources != self.settings.sources:
            self.readers = self.readers_for(settings)
        desired = await watchsync.read(settings.source_names(), settings.listings(), self.readers)
        async with self._changing:
            active = (await watchsync.sync(self.store, desired, now=self.clock.now())).active
            del desired
            self.settings = settings
            return await self._rewatch(self.wanted(active.values()))

    async def found(self, walk: Walk) -> None:
        """A discovery walk's sessions: new ones are stored and watched from now on. A session
        a list also names keeps the labels and interval the list gives."""
        async with self._changing:
            await self._found(walk)

    async def _found(self, walk: Walk) -> None:
        entries = self.step.watchset.entries
        if self.mine is not None:
            # Memory holds our shards only: what is new is what the store does not hold.
            known: Container[SessionKey] = await self.store.active_watches()
        else:
            known = entries
        new = tuple(sorted((w for w in walk.watches if w.key not in known), key=attrgetter("key")))
        if new:
            await self.store.apply_watches(Changes(added=new), now=self.clock.now())
            added, _, _ = await self.step.rewatch(self.wanted(new), add_only=True)
            log.info("discovery.added", source=walk.source, sessions=len(new), added=added,
                     watched=len(entries))  # fmt: skip

    async def add(self, watches: Sequence[Watch]) -> Changes:
        """The admin API's watches (source "api"): stored, then applied to the running poller
        at once; a session already watched takes the new labels, interval and source."""
        async with self._changing:
            return await self._add(watches)

    async def _add(self, watches: Sequence[Watch]) -> Changes:
        stored = await self.store.active_watches()
        added = tuple(w for w in watches if w.key not in stored)
        changed = tuple(w for w in watches if w.key in stored and stored[w.key] != w)
        del stored
        changes = Changes(added=added, changed=changed)
        if changes:
            await self.store.apply_watches(changes, now=self.clock.now())
            await self.step.rewatch(self.wanted((*added, *changed)), add_only=True)
            log.info("watches.api_applied", added=len(added), changed=len(changed))
        return changes

    async def remove(self, session_sid: str) -> Watch | None:
        """Stop watching one session now (its history stays); the watch removed, if any."""
        async with self._changing:
            held = await self.store.remove_watch(session_sid, now=self.clock.now())
            if held is not None:
                self.step.watchset.remove(held.key)
                log.info("watches.api_removed", session_sid=session_sid, source=held.source)
        return held

    async def _rewatch(self, wanted: Sequence[Wanted]) -> dict[str, int]:
        added, removed, changed = await self.step.rewatch(wanted)
        watched = len(self.step.watchset.entries)
        return {"watched": watched, "added": added, "removed": removed, "changed": changed}
