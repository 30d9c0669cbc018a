"""A lease change applied to a running service's watch set (`Watching.reshard`): a lost
shard's sessions leave memory but stay in the store, a gained one's resume from the store,
and a shard retaken under a new epoch is reloaded rather than trusted from memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from monitor import service
from monitor.core.shards import LEADER, SHARDS, shard_of
from tests.clockkit import T0, FakeClock
from tests.test_rewatch import settings_for


async def test_reshard_follows_the_shards_held(simulator, state_path: Path) -> None:
    sim = await simulator(3)
    a, b, c = sim.keys
    for key in sim.keys:
        sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewByDate=None)
    held = {shard_of(k.session_sid) for k in sim.keys}
    async with service.build(
        settings_for(sim.url, sim.keys, state_path), serve_http=False, clock=FakeClock(T0)
    ) as svc:
        await svc.poller.poll_all()
        svc.watching.mine = lambda key: shard_of(key.session_sid) in held
        held.discard(shard_of(c.session_sid))
        summary = await svc.watching.reshard()
        assert summary["removed"] == 1 and c not in svc.watchset.entries
        assert c in await svc.store.active_watches()  # not a removal: its new owner polls it
        assert svc.watching.watched(c)  # so the resender leaves its alerts alone

        held.add(shard_of(c.session_sid))
        assert (await svc.watching.reshard())["added"] == 1
        entry = svc.watchset.entries[c]
        assert entry.snapshot is not None and entry.snapshot.status == "Scheduled"

        svc.watchset.entries[a].version = 99  # what memory says; the store says otherwise
        await svc.watching.reshard(retaken={shard_of(a.session_sid)})
        assert svc.watchset.entries[a].version != 99
        assert b in svc.watchset.entries


async def test_the_shards_held_and_the_leadership_are_gauges(
    simulator, state_path: Path, postgres_url
) -> None:
    """One process on SQLite polls all 256 shards and leads; a lone replica on PostgreSQL
    says what its leases hold, so the fleet's sum shows a shard nobody polls."""
    sim = await simulator(2)
    settings = settings_for(sim.url, sim.keys, state_path)
    async with service.build(settings, serve_http=False, clock=FakeClock(T0)) as svc:
        assert svc.registry.get_sample_value("spmon_shards_owned") == SHARDS
        assert svc.registry.get_sample_value("spmon_leader") == 1
    on_pg = settings.model_copy(
        update={"state": settings.state.model_copy(update={"url": postgres_url})}
    )
    async with service.build(on_pg, serve_http=False) as svc:
        leaser = svc.fleet.leaser
        assert leaser is not None
        owned = len(set(leaser.owned()) - {LEADER})
        assert owned == SHARDS and leaser.is_leader  # alone, it holds every lease
        assert svc.registry.get_sample_value("spmon_shards_owned") == owned
        assert svc.registry.get_sample_value("spmon_leader") == float(leaser.is_leader)


async def test_a_shard_memory_was_not_resharded_for_is_fenced_then_reloaded(
    simulator, state_path: Path, postgres_url
) -> None:
    """A `follow` pass that waited on the store while the shards were lost (the database cut
    off) leaves `applied` empty, and memory still holding their sessions once they are taken
    back: commits for them are fenced until the next pass reloads them from the store."""
    sim = await simulator(2)
    a = sim.keys[0]
    for key in sim.keys:
        sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewByDate=None)
    settings = settings_for(sim.url, sim.keys, state_path)
    on_pg = settings.model_copy(
        update={"state": settings.state.model_copy(update={"url": postgres_url})}
    )
    async with service.build(on_pg, serve_http=False) as svc:
        fleet, fence, shard = svc.fleet, svc.store.fence, shard_of(a.session_sid)
        assert fleet.leaser is not None and fence is not None
        await svc.poller.poll_all()
        assert shard in fence.owned()

        fleet.applied = {}  # what the late pass leaves
        svc.watchset.entries[a].version = 99  # memory from before the loss
        assert shard not in fence.owned()

        stop = asyncio.Event()
        following = asyncio.create_task(fleet.follow(svc.watching, svc.api, stop))
        fleet.changed.set()
        async with asyncio.timeout(10):  # a cap; the pass takes milliseconds
            while fleet.applied != fleet.leaser.owned():
                await asyncio.sleep(0.01)
        stop.set()
        await following
        assert svc.watchset.entries[a].version != 99  # reloaded, not trusted
        assert fence.owned() == fleet.leaser.owned()
