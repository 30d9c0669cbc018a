"""outbox.retention on a real SQLite file and a real PostgreSQL database (issue 7, point 13): settled rows past the retention
go, pending rows never do, recent ones stay, and the alert row a resend loop reads stays."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from monitor import service
from monitor.core.events import EventType
from monitor.metrics import Metrics
from monitor.store import Where, open_store
from tests.sinks.sinkkit import make_event
from tests.storekit import execute, query

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


def history(where: Where, rows: dict[str, tuple[str, float]]) -> None:
    """Give each event (by id) the state it ended in and when it was created."""
    execute(
        where,
        "UPDATE outbox SET state=?, created_at=? WHERE event_id=?",
        [(state, created, event_id) for event_id, (state, created) in rows.items()],
    )


def left(where: Where) -> dict[str, str]:
    return {str(k): str(v) for k, v in query(where, "SELECT event_id, state FROM outbox")}


async def test_purge_deletes_old_settled_rows_only(where: Where) -> None:
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
    async with open_store(where) as store:
        await store.enqueue([(event, ["hook"]) for event in events.values()], old)
    ids = {name: event.id for name, event in events.items()}
    history(
        where,
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
    async with open_store(where) as store:
        purged = await service.purge_expired(store, metrics, retention=30 * DAY, now=NOW)
    assert purged == {"delivered": 2, "dead": 1}
    remaining = left(where)
    assert {name for name, id_ in ids.items() if id_ in remaining} == {
        "old pending",
        "recent delivered",
        "recent dead",
        "old firing alert",
    }

    def counted(state: str) -> float | None:
        return registry.get_sample_value("spmon_outbox_purged_total", {"state": state})

    assert (counted("delivered"), counted("dead")) == (2.0, 1.0)


async def test_purge_works_through_a_large_backlog_in_batches(where: Where) -> None:
    count = service.PURGE_BATCH * 2 + 3
    async with open_store(where) as store:
        await store.enqueue([(make_event(n, 1), ["hook"]) for n in range(count)], NOW - 60 * DAY)
    execute(where, "UPDATE outbox SET state='delivered'")
    metrics = Metrics(CollectorRegistry(), sinks=["hook"])
    async with open_store(where) as store:
        purged = await service.purge_expired(store, metrics, retention=30 * DAY, now=NOW)
    assert purged == {"delivered": count, "dead": 0}
    assert left(where) == {}
