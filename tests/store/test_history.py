"""History on a real SQLite file and a real PostgreSQL database: transitions commit with their snapshot or not at all,
history.retention purges only what is old (and the gauge ages the oldest kept), and the state
file reads read-only beside the process holding its writer and its lock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.core.events import Change, Event, EventType, Field
from monitor.core.keys import SessionKey
from monitor.core.rules import ReviewState
from monitor.core.snapshot import Snapshot
from monitor.core.watches import Watch
from monitor.metrics import Metrics
from monitor.retention import PURGE_BATCH, Retention
from monitor.store import PollRecord, SqliteStore, StateFileError, Where, open_store, read_state
from tests.clockkit import FakeClock
from tests.storekit import DB_ERRORS, outbox_rows, query

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86400.0


def key(n: int) -> SessionKey:
    return SessionKey("AI" + "a" * 32, "EX" + "b" * 32, f"ES{n:032x}")


def event(k: SessionKey, n: int, *, at: datetime = T) -> Event:
    change = Change(Field.STATUS, f"step-{n - 1}", f"step-{n}")
    return Event(f"evt_{k.session_sid[-4:]}_{n}", EventType.STATUS_CHANGED, at, k, change=change)


def record(k: SessionKey, *events: Event, sinks: tuple[str, ...] = ("a",)) -> PollRecord:
    return PollRecord(
        key=k, polled_at=T.timestamp(), outcome="ok", failures=0,
        snapshot=Snapshot("Closed", True, False, T), payload=b"{}", digest=b"d",
        review=ReviewState(), version=len(events),
        deliveries=[(e, sinks) for e in events],
    )  # fmt: skip


def transitions(where: Where) -> list[str]:
    return [row[0] for row in query(where, "SELECT event_id FROM transition ORDER BY id")]


async def test_a_transition_is_recorded_even_when_no_sink_takes_it(where: Where) -> None:
    async with open_store(where) as store:
        await store.commit([record(key(1), event(key(1), 1), sinks=())])
        assert await outbox_rows(store, state=None, limit=10) == []
        (found,) = await store.transitions(key(1).session_sid)
    assert (found.type, found.field, found.previous, found.current) == (
        EventType.STATUS_CHANGED, "status", "step-0", "step-1"
    )  # fmt: skip
    assert found.observed_at == T


async def test_a_failing_commit_leaves_neither_snapshot_nor_transition(where: Where) -> None:
    async with open_store(where) as store:
        good = record(key(1), event(key(1), 1))
        bad = PollRecord(
            key(2), T.timestamp(), "ok", 0, snapshot=Snapshot(object(), None, None, None)
        )  # type: ignore[arg-type]
        with pytest.raises(DB_ERRORS):
            await store.commit([good, bad])
        assert await store.load() == []
        assert await outbox_rows(store, state=None, limit=10) == []
    assert transitions(where) == []


async def test_retention_purges_only_old_transitions_and_the_gauge_ages(where: Where) -> None:
    old = [event(key(1), n, at=T - timedelta(days=200 + n)) for n in range(1, 4)]
    recent = [event(key(2), 1, at=T - timedelta(days=10)), event(key(2), 2, at=T)]
    registry, clock = CollectorRegistry(), FakeClock(T)
    metrics = Metrics(registry, sinks=["a"])
    async with open_store(where) as store:
        await store.commit([record(key(1), *old), record(key(2), *recent)])
        retention = Retention(store, metrics, outbox=0, history=180 * DAY, clock=clock)
        await retention.once()
    assert transitions(where) == [e.id for e in recent]
    assert registry.get_sample_value("spmon_history_purged_total") == 3
    age = registry.get_sample_value("spmon_history_oldest_age_seconds")
    assert age == pytest.approx(10 * DAY)
    clock.advance(3600)  # read at scrape time: it keeps ageing between passes
    age = registry.get_sample_value("spmon_history_oldest_age_seconds")
    assert age == pytest.approx(10 * DAY + 3600)


async def test_retention_zero_keeps_history_forever_and_still_reports_its_age(
    where: Where,
) -> None:
    registry, clock = CollectorRegistry(), FakeClock(T)
    ancient = event(key(1), 1, at=T - timedelta(days=3650))
    async with open_store(where) as store:
        await store.commit([record(key(1), ancient)])
        await Retention(store, Metrics(registry), outbox=0, history=0, clock=clock).once()
    assert transitions(where) == [ancient.id]
    assert registry.get_sample_value("spmon_history_oldest_age_seconds") == 3650 * DAY


async def test_retention_works_through_a_large_history_in_batches(where: Where) -> None:
    count = PURGE_BATCH + 7
    at = T - timedelta(days=400)
    async with open_store(where) as store:
        await store.commit([record(key(1), *(event(key(1), n, at=at) for n in range(count)))])
        registry = CollectorRegistry()
        retention = Retention(store, Metrics(registry), outbox=0, history=DAY, clock=FakeClock(T))
        await retention.once()
    assert transitions(where) == []
    assert registry.get_sample_value("spmon_history_oldest_age_seconds") == 0.0
    assert registry.get_sample_value("spmon_history_purged_total") == count


_READER = """
import asyncio, json, sys
from monitor.store import read_state

async def main():
    target = sys.argv[1]
    if target.startswith("postgresql://"):
        where = __import__("pydantic").SecretStr(target)
    else:
        where = __import__("pathlib").Path(target)
    async with read_state(where) as reader:
        rows = await reader.session_rows()
        found = await reader.transitions(sys.argv[2])
        print(json.dumps([[r.key.session_sid for r in rows], [t.event_id for t in found]]))

asyncio.run(main())
"""


async def test_another_process_reads_while_the_writer_holds_the_lock(where: Where) -> None:
    async with open_store(where) as store:
        await store.add_watch(Watch(key(1), {"course": "BIO101"}, None, "cli"), now=T.timestamp())
        await store.commit([record(key(1), event(key(1), 1))])
        # A second process, no lock, while this one holds the lock and the writer connection.
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", _READER, _target(where), key(1).session_sid],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr
        sids, events = json.loads(done.stdout)
        assert sids == [key(1).session_sid] and events == [event(key(1), 1).id]
        await store.commit([record(key(1), event(key(1), 2))])  # the writer is unhindered


def _target(where: Where) -> str:
    return str(where) if isinstance(where, Path) else where.get_secret_value()


async def test_the_reader_writes_nothing_and_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="does not exist"):
        async with read_state(tmp_path / "nope.db"):
            pass
    assert not (tmp_path / "nope.db").exists()
    path = tmp_path / "spmon.db"
    async with SqliteStore(path):
        pass
    async with read_state(path) as reader:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await reader.enable_sink("a")


async def test_a_state_file_before_history_reads_with_no_transitions(state_path: Path) -> None:
    async with SqliteStore(state_path) as store:
        await store.commit([record(key(1), event(key(1), 1))])
    with contextlib.closing(sqlite3.connect(state_path)) as db, db:
        db.execute("DROP TABLE transition")
        db.execute("PRAGMA user_version=4")
    async with read_state(state_path) as reader:
        assert await reader.transitions(key(1).session_sid) == []
        assert await reader.oldest_transition() is None
        assert len(await reader.deliveries(key(1).session_sid)) == 1
