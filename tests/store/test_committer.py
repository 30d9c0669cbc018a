"""Lazy poll times: touches wait for a batch or `touch_every`, or until `touch_limit` wait;
and a restored row shares its equal instants, its snapshot's with other rows too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from monitor.core.keys import SessionKey
from monitor.core.rules import ReviewState
from monitor.core.snapshot import Snapshot
from monitor.store import Committer, PollRecord, Where, open_store

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def key(n: int) -> SessionKey:
    return SessionKey("AI" + "a" * 32, "EX" + "b" * 32, f"ES{n:032x}")


def record(k: SessionKey) -> PollRecord:
    return PollRecord(
        key=k, polled_at=T.timestamp(), outcome="ok", failures=0,
        snapshot=Snapshot("Closed", True, False, T), payload=b"{}", digest=b"d",
        review=ReviewState(overdue_since=T, last_overdue_alert=T, due_soon_for=T),
    )  # fmt: skip


async def test_touches_are_written_once_the_limit_waits(where: Where) -> None:
    later = T.timestamp() + 60
    async with open_store(where) as store:
        await store.commit([record(key(n)) for n in range(3)])
        async with Committer(store, touch_every=3600.0, touch_limit=2) as committer:
            committer.touch(key(0).session_sid, later)
            committer.touch(key(1).session_sid, later)
            for _ in range(1000):  # written by the committer's task, not at close
                polled = {r.key: r.last_poll_at for r in await store.load()}
                if polled[key(1)] == later:
                    break
                await asyncio.sleep(0.01)
            assert polled == {key(0): later, key(1): later, key(2): T.timestamp()}


async def test_a_restored_row_shares_its_equal_instants(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1))])
        (loaded,) = await store.load()
    review, snapshot = loaded.review, loaded.snapshot
    assert snapshot is not None and review.overdue_since == T
    assert review.overdue_since is review.last_overdue_alert is review.due_soon_for
    assert snapshot.review_by_date is review.overdue_since


async def test_restored_rows_share_their_snapshots_equal_instants(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1)), record(key(2))])
        first, second = (loaded.snapshot for loaded in await store.load())
    assert first is not None and second is not None
    assert first.review_by_date == T and first.review_by_date is second.review_by_date
