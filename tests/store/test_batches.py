"""Digest batches keep each session's order, like single-row claims, on a real SQLite file
and a real PostgreSQL database (`where`): a session's later row never goes before its
earlier one, whether that one is in flight elsewhere or waits for a later retry."""

from __future__ import annotations

from monitor.store import Where, open_store
from tests.store.test_sqlite import T, event, key, record

NOW = T.timestamp()


def batch_args(owner: str = "me", **more: object) -> dict[str, object]:
    return {"window": 0.0, "owner": owner, "lease": 60.0, "limit": 100, "max_attempts": 5, **more}


async def test_a_batch_waits_behind_a_sessions_row_in_flight(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit(
            [record(key(1), event(key(1), 1), event(key(1), 2)), record(key(2), event(key(2), 1))]
        )
        (head,) = await store.claim("a", now=NOW, limit=1, owner="other", lease=60)
        assert head.event_id == "evt_0001_1"
        rows, _ = await store.claim_batch("a", now=NOW, **batch_args())
        assert [r.event_id for r in rows] == ["evt_0002_1"]  # not evt_0001_2
        assert await store.mark_delivered(head.id, owner="other", now=NOW)
        rows, _ = await store.claim_batch("a", now=NOW, **batch_args())
        assert [r.event_id for r in rows] == ["evt_0001_2"]


async def test_a_batch_takes_a_sessions_rows_together_in_order(where: Where) -> None:
    async with open_store(where) as store:
        events = [event(key(1), n) for n in (1, 2, 3)]
        await store.commit([record(key(1), *events), record(key(2), event(key(2), 1))])
        rows, _ = await store.claim_batch("a", now=NOW, **batch_args())
        assert [r.event_id for r in rows] == [
            "evt_0001_1",
            "evt_0001_2",
            "evt_0001_3",
            "evt_0002_1",
        ]


async def test_a_batch_waits_behind_a_sessions_row_retried_later(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1))])
        rows, _ = await store.claim_batch("a", now=NOW, **batch_args())
        assert await store.settle_batch([r.id for r in rows], owner="me", how="retry", at=NOW + 300)
        await store.commit([record(key(1), event(key(1), 1), event(key(1), 2))])
        assert await store.claim_batch("a", now=NOW + 10, **batch_args()) == ([], 0)
        assert await store.next_batch_due("a", now=NOW + 10, window=0.0) == NOW + 300
        rows, _ = await store.claim_batch("a", now=NOW + 10, **batch_args(force=True))
        assert [r.event_id for r in rows] == ["evt_0001_1", "evt_0001_2"]  # a probe: both, in order
