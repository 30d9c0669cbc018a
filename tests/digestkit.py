"""What the digest and quiet tests share: a dispatcher over a real store file and real
loopback receivers, on a FakeClock, with events enqueued at the clock's time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.core import digest
from monitor.core.backoff import Schedule
from monitor.core.events import Event, EventType
from monitor.dispatcher import Dispatcher
from monitor.metrics import Metrics
from monitor.sinks import Limits, Sink, SlackSink
from monitor.store import SqliteStore
from tests.clockkit import FakeClock
from tests.sinks.sinkkit import make_event

__all__ = ["FAST", "dispatching", "overdue", "settle", "slack"]

FAST = Limits(concurrency=1, rate=None, schedule=Schedule((0.0, 5.0, 5.0, 5.0), jitter=0.0))


def slack(url: str, name: str = "slack") -> Sink:
    return SlackSink(name, url=url + "/services/T/B/x", limits=FAST, allow_private=True)


def overdue(n: int, *, course: str = "BIO101", late_hours: float = 1.0) -> list[Event]:
    """`n` review.overdue events, session i late by `late_hours` + i minutes."""
    at = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    found = []
    for i in range(n):
        event = make_event(1000 + i, 1, kind=EventType.REVIEW_OVERDUE, labels={"course": course})
        snap = event.snapshot
        assert snap is not None
        deadline = at.timestamp() - late_hours * 3600 - i * 60
        late = type(snap)(snap.status, True, False, datetime.fromtimestamp(deadline, UTC), snap.url)
        found.append(
            type(event)(
                event.id, event.type, at, event.key, event.labels, None, late, event.message
            )
        )
    return found


async def settle(rounds: int = 30) -> None:
    """Let the dispatcher's tasks and the store's thread run (no clock moves)."""
    for _ in range(rounds):
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def dispatching(
    path: Path,
    sinks: Sequence[Sink],
    clock: FakeClock,
    *,
    plans: Mapping[str, digest.Plan],
    events: Sequence[Event] = (),
    **options: Any,
) -> AsyncIterator[tuple[Dispatcher, SqliteStore, Metrics]]:
    async with SqliteStore(path) as store:
        if events:
            await store.enqueue([(e, [s.name for s in sinks]) for e in events], clock.now())
        metrics = Metrics(CollectorRegistry(), sinks=[s.name for s in sinks])
        dispatcher = Dispatcher(
            store=store, sinks=sinks, metrics=metrics, clock=clock, plans=plans, settle=0.5,
            **options,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            yield dispatcher, store, metrics
        finally:
            stop.set()
            await task
            for sink in sinks:
                await sink.aclose()
