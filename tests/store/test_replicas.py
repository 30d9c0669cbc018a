"""The outbox shared by replicas on PostgreSQL: a claim skips rows another transaction holds
locked (a peer mid-claim) instead of waiting for it and leasing them a second time; several
processes may open the store at once."""

from __future__ import annotations

import asyncio

import psycopg
from pydantic import SecretStr

from monitor.store import open_store
from tests.store.test_sqlite import T, event, key, record
from tests.storekit import query

CAP = 30.0
"""Turns a claim blocked on the peer's lock (the bug) into a failure, never a timing claim."""


async def test_claims_skip_the_rows_a_peer_has_locked(postgres_url: SecretStr) -> None:
    now = T.timestamp()
    async with open_store(postgres_url) as store:
        await store.commit([record(key(n), event(key(n), 1)) for n in (1, 2, 3)])
        ids = {sid: i for i, sid in query(postgres_url, "SELECT id, session_sid FROM outbox"
                                          " WHERE sink = 'a'")}  # fmt: skip
        locked = ids[key(1).session_sid]
        with psycopg.connect(postgres_url.get_secret_value()) as peer:
            peer.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (locked,))
            rows = await asyncio.wait_for(
                store.claim("a", now=now, limit=10, owner="me", lease=60), CAP
            )
            assert locked not in {r.id for r in rows} and len(rows) == 2
            assert (
                await asyncio.wait_for(store.claim_probe("a", now=now, owner="me", lease=60), CAP)
                is None
            )  # the only free head is the locked one
            batch, _ = await asyncio.wait_for(
                store.claim_batch(
                    "b", now=now, window=0, owner="me", lease=60, limit=10, max_attempts=5
                ),
                CAP,
            )
            assert len(batch) == 3  # sink b's rows: none locked
            peer.rollback()
        (row,) = await store.claim("a", now=now, limit=10, owner="me", lease=60)
        assert row.id == locked


async def test_two_processes_open_one_database_and_keep_each_others_leases(
    postgres_url: SecretStr,
) -> None:
    """No process lock any more: the second start must not release the first's outbox leases."""
    now = T.timestamp()
    async with open_store(postgres_url) as first:
        await first.commit([record(key(1), event(key(1), 1))])
        (row,) = await first.claim("a", now=now, limit=1, owner="first", lease=600)
        async with open_store(postgres_url) as second:
            await second.ping()
            assert await second.claim("a", now=now, limit=1, owner="second", lease=60) == []
        assert await first.mark_delivered(row.id, owner="first", now=now)
