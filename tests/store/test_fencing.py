"""Fenced writes: a snapshot + outbox transaction lands only while this replica holds the
session's shard at its epoch (PostgreSQL, checked in the same transaction); SQLite, one
process per file, fences nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from monitor.core.shards import shard_of
from monitor.store import Committer, Fenced, Where, open_store
from monitor.store.postgres.leases import LeaseTable
from tests.store.test_sqlite import event, key, record
from tests.storekit import execute, outbox_rows, query


@dataclass
class Holder:
    """What a Leaser shows the store: an owner and the shards it believes it holds."""

    owner: str
    held: dict[int, int] = field(default_factory=dict)

    def owned(self) -> Mapping[int, int]:
        return self.held


def expire(url: SecretStr, shard: int) -> None:
    execute(url, "UPDATE shard_lease SET expires_at = now() WHERE shard = ?", [(shard,)])


async def test_sqlite_fences_nothing(state_path: Where) -> None:
    async with open_store(state_path) as store:
        assert await store.commit([record(key(1), event(key(1), 1))]) == frozenset()
        assert len(await store.load()) == 1


async def test_a_commit_lands_only_at_the_owners_current_epoch(postgres_url: SecretStr) -> None:
    a_key, b_key = key(1), key(2)
    a_shard = shard_of(a_key.session_sid)
    assert shard_of(b_key.session_sid) != a_shard
    url = postgres_url.get_secret_value()
    async with open_store(postgres_url) as store:
        with LeaseTable(url, "me", ttl=60) as mine, LeaseTable(url, "peer", ttl=60) as peer:
            won = mine.claim([a_shard])
            holder = Holder("me", dict(won))
            store.fence = holder  # type: ignore[union-attr]
            written = await store.commit(
                [record(a_key, event(a_key, 1)), record(b_key, event(b_key, 1))]
            )
            assert written == {b_key.session_sid}  # b's shard was never ours
            assert [r.key for r in await store.load()] == [a_key]

            # the peer takes the shard over after expiry: our epoch is stale from then on
            expire(postgres_url, a_shard)
            assert peer.claim([a_shard]) == {a_shard: won[a_shard] + 1}
            stale = record(a_key, event(a_key, 1), event(a_key, 2), status="Incident")
            assert await store.commit([stale], touched={a_key.session_sid: 9.0}) == {
                a_key.session_sid
            }
            (kept,) = await store.load()
            assert kept.snapshot is not None and kept.snapshot.status == "Closed"
            assert kept.version == 1 and kept.last_poll_at != 9.0
            assert len(await outbox_rows(store, state=None, limit=10)) == 2  # a's first only

            # the right owner but an expired row (our clock thinks it still holds): refused
            holder.held = {a_shard: won[a_shard] + 1}
            holder.owner = "peer"
            expire(postgres_url, a_shard)
            assert await store.commit([stale]) == {a_key.session_sid}


async def test_the_committer_raises_fenced_for_each_fenced_poll(postgres_url: SecretStr) -> None:
    k = key(3)
    async with open_store(postgres_url) as store:
        store.fence = Holder("me")  # type: ignore[union-attr]  # holds nothing
        async with Committer(store, linger=0) as committer:
            with pytest.raises(Fenced) as fenced:
                await committer.commit(record(k, event(k, 1)))
    assert fenced.value.session_sid == k.session_sid
    assert query(postgres_url, "SELECT count(*) FROM session") == [(0,)]
    assert query(postgres_url, "SELECT count(*) FROM transition") == [(0,)]
