"""outbox.retention on a real SQLite file (issue 7, point 13): settled rows past the retention
go, pending rows never do, recent ones stay, and the alert row a resend loop reads stays."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor import service
from monitor.core.events import EventType
from monitor.metrics import Metrics
from monitor.store import SqliteStore
from tests.sinks.sinkkit import make_event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


def history(path: Path, rows: dict[str, tuple[str, float]]) -> None:
    """Give each event (by id) the state it ended in and when it was created."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "UPDATE outbox SET state=?, created_at=? WHERE event_id=?",
            [(state, created, event_id) for event_id, (state, created) in rows.items()],
        )


def left(path: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT event_id, state FROM outbox"))


async def test_purge_deletes_old_settled_rows_only(state_path: Path) -> None:
    old, recent = NOW - 31 * DAY, NOW - 29 * DAY
    events = {
        "old delivered": make_event(1, 1),
        "old dead": make_event(2, 1),
        "old pending": make_event(3, 1),
        "recent delivered": make_event(4, 1),
        "recent dead": make_event(5, 1),
        "older alert, same session": make_event(6, 0, kind=EventType.REVIEW_OVERDUE),
        "old firing alert": make_event(6, 1, kind=EventType.REVIEW_OVERDUE),
    }
    async with SqliteStore(state_path) as store:
        await store.enqueue([(event, ["hook"]) for event in events.values()], old)
    ids = {name: event.id for name, event in events.items()}
    history(
        state_path,
        {
            ids["old delivered"]: ("delivered", old),
            ids["old dead"]: ("dead", old),
            ids["old pending"]: ("pending", old - 365 * DAY),
            ids["recent delivered"]: ("delivered", recent),
            ids["recent dead"]: ("dead", recent),
            ids["older alert, same session"]: ("delivered", old - DAY),
            ids["old firing alert"]: ("delivered", old),
        },
    )
    registry = CollectorRegistry()
    metrics = Metrics(registry, sinks=["hook"])
    async with SqliteStore(state_path) as store:
        purged = await service.purge_expired(store, metrics, retention=30 * DAY, now=NOW)
    assert purged == {"delivered": 2, "dead": 1}
    remaining = left(state_path)
    assert {name for name, id_ in ids.items() if id_ in remaining} == {
        "old pending",
        "recent delivered",
        "recent dead",
        "old firing alert",
    }

    def counted(state: str) -> float | None:
        return registry.get_sample_value("spmon_outbox_purged_total", {"state": state})

    assert (counted("delivered"), counted("dead")) == (2.0, 1.0)


async def test_purge_works_through_a_large_backlog_in_batches(state_path: Path) -> None:
    count = service.PURGE_BATCH * 2 + 3
    async with SqliteStore(state_path) as store:
        await store.enqueue([(make_event(n, 1), ["hook"]) for n in range(count)], NOW - 60 * DAY)
    with contextlib.closing(sqlite3.connect(state_path)) as db, db:
        db.execute("UPDATE outbox SET state='delivered'")
    metrics = Metrics(CollectorRegistry(), sinks=["hook"])
    async with SqliteStore(state_path) as store:
        purged = await service.purge_expired(store, metrics, retention=30 * DAY, now=NOW)
    assert purged == {"delivered": count, "dead": 0}
    assert left(state_path) == {}
