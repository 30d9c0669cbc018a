"""The store contract on a real SQLite file and a real PostgreSQL database (`where`): atomic
commits, the process lock, outbox claims and fencing."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core.context import shared_context
from monitor.core.events import Change, Event, EventType, Field
from monitor.core.keys import SessionKey
from monitor.core.outbox import OutboxState
from monitor.core.rules import ReviewState
from monitor.core.snapshot import Snapshot
from monitor.store import (
    PollRecord,
    SqliteStore,
    StoreLocked,
    Where,
    open_shared,
    open_store,
)
from monitor.store.sqlite import SharedSqliteStore
from tests.storekit import DB_ERRORS, outbox_rows

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def key(n: int) -> SessionKey:
    return SessionKey("AI" + "a" * 32, "EX" + "b" * 32, f"ES{n:032x}")


def event(k: SessionKey, n: int) -> Event:
    change = Change(Field.STATUS, f"step-{n - 1}", f"step-{n}")
    return Event(f"evt_{k.session_sid[-4:]}_{n}", EventType.STATUS_CHANGED, T, k, change=change)


def record(k: SessionKey, *events: Event, status: str = "Closed") -> PollRecord:
    return PollRecord(
        key=k, polled_at=T.timestamp(), outcome="ok", failures=0,
        snapshot=Snapshot(status, True, False, T), payload=b"{}", digest=b"d",
        review=ReviewState(overdue_since=T), version=len(events),
        deliveries=[(e, ["a", "b"]) for e in events],
    )  # fmt: skip


async def test_a_second_process_on_the_same_file_is_refused(where: Where) -> None:
    """One process per SQLite file (its lock); PostgreSQL replicas share one database, the
    shard leases splitting the sessions (tests/store/test_leases.py)."""
    async with open_store(where):
        if isinstance(where, Path):
            with pytest.raises(StoreLocked, match="in use by another spmon process"):
                async with open_store(where):
                    pass
        else:
            async with open_store(where) as second:
                await second.ping()
    async with open_store(where):  # released on exit
        pass


async def test_snapshot_review_state_and_outbox_survive_reopen(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1))])
    async with open_store(where) as store:
        (loaded,) = await store.load()
        rows = await outbox_rows(store, state="pending", limit=10)
    assert loaded.snapshot == Snapshot("Closed", True, False, T)
    assert loaded.review.overdue_since == T
    assert loaded.version == 1
    assert sorted(r.sink for r in rows) == ["a", "b"]


async def test_a_failing_batch_commits_nothing(where: Where) -> None:
    async with open_store(where) as store:
        good = record(key(1), event(key(1), 1))
        bad = PollRecord(
            key(2), T.timestamp(), "ok", 0, snapshot=Snapshot(object(), None, None, None)
        )  # type: ignore[arg-type]
        with pytest.raises(DB_ERRORS):
            await store.commit([good, bad])
        assert await store.load() == []
        assert await outbox_rows(store, state=None, limit=10) == []


async def test_the_same_event_is_enqueued_once(where: Where) -> None:
    async with open_store(where) as store:
        e = event(key(1), 1)
        await store.commit([record(key(1), e)])
        await store.commit([record(key(1), e)])
        assert len(await outbox_rows(store, state=None, limit=10)) == 2  # one per sink


async def test_claim_takes_only_the_head_of_each_session(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit(
            [record(key(1), event(key(1), 1), event(key(1), 2)), record(key(2), event(key(2), 1))]
        )
        first = await store.claim("a", now=T.timestamp(), limit=10, owner="me", lease=60)
        assert [r.event_id for r in first] == ["evt_0001_1", "evt_0002_1"]
        assert await store.claim("a", now=T.timestamp(), limit=10, owner="me", lease=60) == []
        assert await store.mark_delivered(first[0].id, owner="me", now=T.timestamp())
        nxt = await store.claim("a", now=T.timestamp(), limit=10, owner="me", lease=60)
        assert [r.event_id for r in nxt] == ["evt_0001_2"]


async def test_only_the_lease_holder_can_finish_a_row(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1))])
        now = T.timestamp()
        (row,) = await store.claim("a", now=now, limit=1, owner="old", lease=10)
        (again,) = await store.claim("a", now=now + 11, limit=1, owner="new", lease=10)
        assert again.id == row.id and again.attempts == 2
        assert not await store.mark_delivered(row.id, owner="old", now=now + 12)
        assert await store.mark_delivered(row.id, owner="new", now=now + 12)


async def test_released_leases_are_claimable_at_once(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1))])
        now = T.timestamp()
        await store.claim("a", now=now, limit=1, owner="me", lease=60)
        await store.release("me")
        (row,) = await store.claim("a", now=now, limit=1, owner="next", lease=60)
        assert row.attempts == 1  # the released attempt was refunded


async def test_dead_rows_can_be_requeued_and_purged(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1))])
        now = T.timestamp()
        (row,) = await store.claim("a", now=now, limit=1, owner="me", lease=60)
        assert await store.mark_dead(row.id, owner="me", error="HTTP 400")
        stats = await store.stats()
        assert stats.dead == {"a": 1} and stats.pending == {"b": 1}
        assert await store.requeue_dead(sink="a", now=now) == 1
        assert (await store.stats()).dead == {}
        (row,) = await store.claim("a", now=now, limit=1, owner="me", lease=60)
        await store.mark_dead(row.id, owner="me", error="HTTP 400")
        assert await store.purge_settled(state="dead", sink=None, before=None, keep=()) == 1


def test_the_outbox_states_are_the_ones_the_schema_allows() -> None:
    schema = Path(__file__).resolve().parents[2] / "monitor" / "store" / "schema" / "001_init.sql"
    allowed = re.search(r"CHECK \(state IN \(([^)]*)\)\)", schema.read_text())
    assert allowed is not None
    assert {name.strip(" '") for name in allowed[1].split(",")} == set(OutboxState)


async def test_rows_read_back_carry_typed_states(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1))])
        (row,) = await store.claim("a", now=T.timestamp(), limit=1, owner="me", lease=60)
        assert row.state is OutboxState.PENDING
        await store.mark_dead(row.id, owner="me", error="HTTP 400")
        (entry,) = await store.entries(state=OutboxState.DEAD, sink="a", limit=5)
    assert entry.state is OutboxState.DEAD


async def test_a_store_gets_one_deployment_id_for_life(where: Where) -> None:
    async with open_store(where) as store:
        made = store.deployment_id
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    async with open_store(where) as store:
        assert store.deployment_id == made
    async with open_shared(where) as shared:
        assert shared.deployment_id == made


async def test_a_state_file_gets_one_deployment_id_for_life(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "a.db") as store:
        made = store.deployment_id
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    async with SqliteStore(tmp_path / "a.db") as store:
        assert store.deployment_id == made
    async with SharedSqliteStore(tmp_path / "a.db") as shared:
        assert shared.deployment_id == made
    async with SqliteStore(tmp_path / "b.db") as other:
        assert other.deployment_id != made


async def test_only_the_lock_holder_releases_leases_at_open(where: Where) -> None:
    """Leases left by a killed process go back at the next locked open (SQLite; on PostgreSQL
    at their expiry), attempt still counted; `spmon outbox` (the shared store, no lock) must leave a running service's leases alone."""
    now = T.timestamp()
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1))])
        await store.claim("a", now=now, limit=1, owner="killed", lease=3600)
    async with open_shared(where) as shared:
        assert await shared.claim("a", now=now, limit=1, owner="cli", lease=60) == []
        await shared.release("cli")
    async with open_store(where) as store:
        if isinstance(where, Path):
            (row,) = await store.claim("a", now=now, limit=1, owner="next", lease=60)
        else:  # replicas: the lease may be a live peer's, so it ends only by expiring
            assert await store.claim("a", now=now, limit=1, owner="next", lease=60) == []
            (row,) = await store.claim("a", now=now + 3601, limit=1, owner="next", lease=60)
    assert row.attempts == 2


async def test_a_row_whose_attempts_are_used_up_is_dead_lettered_at_claim(
    where: Where,
) -> None:
    now = T.timestamp()
    dead: list[int] = []
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1), event(key(1), 2))])
        for n in (1, 2):  # each claim is followed by a crash: no answer, no mark
            (row,) = await store.claim("a", now=now + n, limit=1, owner=f"run{n}", lease=0.5)
        assert row.attempts == 2
        claim = store.claim(
            "a", now=now + 3, limit=5, owner="run3", lease=60, max_attempts=2,
            on_dead=lambda: dead.append(1),
        )  # fmt: skip
        (nxt,) = await claim
        entries = await store.entries(state="dead", sink="a", limit=5)
    assert nxt.event_id == "evt_0001_2" and nxt.attempts == 1  # the session's next row flows
    assert [(e.event_id, e.attempts, e.last_error) for e in entries] == [
        ("evt_0001_1", 2, "crashed during delivery")
    ]
    assert dead == [1]


async def test_a_dead_lettered_resolve_still_ends_the_firing_alert(where: Where) -> None:
    """A review.overdue_resolved that could not be delivered still means the review is done:
    the resend loop must stop re-firing the overdue alert before it (a false alarm forever)."""
    k = key(7)
    fire, resolve = str(EventType.REVIEW_OVERDUE), str(EventType.REVIEW_OVERDUE_RESOLVED)
    overdue = Event("evt_fire", EventType.REVIEW_OVERDUE, T, k)
    resolved = Event("evt_done", EventType.REVIEW_OVERDUE_RESOLVED, T, k)
    async with open_store(where) as store:
        await store.enqueue([(overdue, ["am"])], T.timestamp())
        assert [r.event_id for r in await store.firing("am", fire=fire, resolve=resolve)] == [
            "evt_fire"
        ]
        await store.enqueue([(resolved, ["am"])], T.timestamp())
        (row,) = [
            r
            for r in await outbox_rows(store, state="pending", limit=10)
            if r.event_id == "evt_done"
        ]
        claimed = await store.claim("am", now=T.timestamp() + 1, limit=10, owner="o", lease=60)
        assert [r.event_id for r in claimed] == ["evt_fire"]  # a session's rows go in order
        assert await store.mark_delivered(claimed[0].id, owner="o", now=T.timestamp() + 1)
        (done,) = await store.claim("am", now=T.timestamp() + 2, limit=10, owner="o", lease=60)
        assert done.id == row.id
        assert await store.mark_dead(done.id, owner="o", error="HTTP 400")
        assert await store.firing("am", fire=fire, resolve=resolve) == []


async def test_the_session_names_survive_a_restart_shared_and_without_the_reviewer(
    state_path: Path,
) -> None:
    names = shared_context("BIO 101 Midterm", "BIO 101: Biology", "Example U", "Late")
    assert names is not None
    seen = Snapshot("Closed", True, True, T, context=replace(names, reviewer_sid="US1"))
    async with SqliteStore(state_path) as store:
        await store.commit([replace(record(key(1)), snapshot=seen)])
        await store.commit([replace(record(key(2)), snapshot=replace(seen, context=None))])
    async with SqliteStore(state_path) as store:
        first, second = sorted(await store.load(), key=lambda r: r.key.session_sid)
    assert first.snapshot is not None and first.snapshot.context is names
    assert second.snapshot is not None and second.snapshot.context is None
