"""A replica's part in the fleet (PostgreSQL): the shard leases it holds, and what follows
from them: which watches it keeps in memory, whether it runs the singletons (discovery,
retention), its share of the API budget, and the fleet-wide 429 pause.

`service.build` enters `join`; a root task runs `Fleet.follow`. On SQLite the fleet is this
one process (the file's lock): it keeps every watch, leads, and `follow` is never run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor import aio
from monitor.api import ApiClient
from monitor.core.keys import SessionKey
from monitor.core.shards import LEADER, SHARDS, shard_of
from monitor.settings import Settings
from monitor.store import Store
from monitor.watching import Watching

if TYPE_CHECKING:  # psycopg is imported only where a PostgreSQL URL is opened
    from monitor.leasing import Leaser

__all__ = ["Fleet", "join"]


@dataclass
class Fleet:
    leaser: Leaser | None = None
    """The shard leases this replica holds; None when one process owns the store."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set (from the leaser's thread, through the loop) when the leases changed."""
    applied: Mapping[int, int] = field(default_factory=dict)
    """shard → epoch the watch set was last resharded for."""

    def leading(self) -> bool:
        """The singletons run here: on the leader, or in the only process."""
        return self.leaser is None or self.leaser.is_leader

    def shards(self) -> int:
        """The shards this process polls (every one when it owns the store alone)."""
        if self.leaser is None:
            return SHARDS
        return len(set(self.leaser.owned()) - {LEADER})

    @property
    def mine(self) -> Callable[[SessionKey], bool] | None:
        """Whether a session is in one of this replica's shards (None: every one is)."""
        leaser = self.leaser
        if leaser is None:
            return None
        owned = leaser.owned
        return lambda key: shard_of(key.session_sid) in owned()

    def share_budget(self, api: ApiClient) -> None:
        """The fleet's API rate limit split by shards: this replica's part is the share it
        holds (the leader's discovery walks come out of the leader's part)."""
        if self.leaser is not None:
            api.set_share(self.shards() / SHARDS)

    async def leave(self) -> None:
        """Hand every shard to the peers now (a stopping replica, once its polls are done)."""
        if self.leaser is not None:
            await self.leaser.leave()

    async def follow(self, watching: Watching, api: ApiClient, stop: asyncio.Event) -> None:
        """Apply each lease change to the watch set and the API budget, until `stop`."""
        while not stop.is_set():
            await aio.first_of(stop, self.changed)
            if stop.is_set():
                return
            self.changed.clear()
            owned = dict(self.leaser.owned()) if self.leaser is not None else {}
            # Not resharded for at this epoch: memory may still hold its sessions from before
            # it was lost (a pass that waited on the store, as with the database cut off, sets
            # `applied` empty and keeps them), and another replica may have polled them since.
            retaken = {s for s, e in owned.items() if self.applied.get(s) != e}
            await watching.reshard(retaken)
            self.applied = owned
            self.share_budget(api)


@dataclass(slots=True)
class Resharded:
    """The fence commits are checked on: the shards held now at the epoch the watch set was
    last resharded for. A shard lost and taken back under a new epoch is written again only
    once `follow` has reloaded its sessions from the store; memory from before the loss
    would commit transitions the interim owner already wrote, under new ids."""

    owner: str
    fleet: Fleet

    def owned(self) -> Mapping[int, int]:
        applied, leaser = self.fleet.applied, self.fleet.leaser
        held = leaser.owned() if leaser is not None else {}
        return {shard: epoch for shard, epoch in held.items() if applied.get(shard) == epoch}


@contextlib.asynccontextmanager
async def join(settings: Settings, store: Store, api: ApiClient) -> AsyncIterator[Fleet]:
    """On PostgreSQL, take this replica's shard leases: every commit is fenced on them, a 429
    this replica sees pauses the fleet (and a peer's pauses it). On exit they are released."""
    if settings.state.url is None:
        yield Fleet()
        return
    from monitor.leasing import Leaser
    from monitor.store.postgres.store import PostgresStore

    assert isinstance(store, PostgresStore)  # a state.url opens one
    changed = asyncio.Event()
    async with Leaser(
        settings.state.url.get_secret_value(),
        on_change=lambda _: changed.set(),
        on_pause=api.pause_for,
    ) as leaser:
        fleet = Fleet(leaser, changed, dict(leaser.owned()))
        store.fence = Resharded(leaser.owner, fleet)
        api.on_pause = leaser.tell_pause
        fleet.share_budget(api)
        try:
            yield fleet
        finally:
            store.fence = None
