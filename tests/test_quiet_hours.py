"""Quiet hours on a FakeClock against a real Slack-like receiver: while a window is on, the
sink's rows are held (pending, next attempt at the window's end, counted as held, the sink
shows `quiet`); when it ends, they go as one digest. A one-off window written to the store
(as `spmon quiet add` does) is seen by the running dispatcher."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time
from pathlib import Path

from monitor.core import digest, quiet
from monitor.lanes import statuses
from tests.clockkit import FakeClock
from tests.digestkit import dispatching, overdue, settle, slack
from tests.sinks.sinkkit import Hit, Receiver
from tests.storekit import outbox_rows

Endpoint = Callable[..., Awaitable[Receiver]]
NIGHT = datetime(2026, 11, 18, 23, 0, tzinfo=UTC)  # a Wednesday
NIGHTS = quiet.Schedule((quiet.Daily(time(22), time(7)),), UTC)
MORNING = datetime(2026, 11, 19, 7, 0, tzinfo=UTC).timestamp()


def _text(hit: Hit) -> str:
    body = hit.json()
    assert isinstance(body, dict)
    return str(body["text"])


async def test_held_through_the_night_then_one_digest(tmp_path: Path, endpoint: Endpoint) -> None:
    server = await endpoint()
    clock = FakeClock(NIGHT)
    plan = digest.Plan(quiet=NIGHTS)
    async with dispatching(
        tmp_path / "s.db", [slack(server.url)], clock, plans={"slack": plan}, events=overdue(7)
    ) as (dispatcher, store, metrics):
        for _ in range(8):  # an hour at a time through the night
            await settle()
            clock.advance(3600 - 1)
        await settle()
        assert server.hits == []
        rows = await outbox_rows(store, state="pending", limit=100)
        assert len(rows) == 7
        assert metrics.notifications_held.labels("slack")._value.get() == 7
        assert statuses(dispatcher.lanes, clock.now())["slack"] == "quiet"
        clock.set(MORNING)
        await server.until(lambda r: len(r.hits) == 1, what="the morning digest")
        await settle()
        clock.advance(3600)
        await settle()
        assert len(await outbox_rows(store, state="delivered", limit=100)) == 7
        assert metrics.notifications_held.labels("slack")._value.get() == 0
        assert statuses(dispatcher.lanes, clock.now())["slack"] == "up"
    assert len(server.hits) == 1
    assert "7 new overdue" in _text(server.hits[0])


async def test_events_arriving_during_the_window_join_the_digest(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    server = await endpoint()
    clock = FakeClock(NIGHT)
    plan = digest.Plan(quiet=NIGHTS)
    async with dispatching(
        tmp_path / "s.db", [slack(server.url)], clock, plans={"slack": plan}, events=overdue(2)
    ) as (dispatcher, store, _):
        await settle()
        clock.advance(3600)
        late = overdue(5)[2:]
        await store.enqueue([(e, ["slack"]) for e in late], clock.now())
        dispatcher.notify()
        await settle()
        clock.set(MORNING)
        await server.until(lambda r: len(r.hits) == 1, what="the morning digest")
        await settle()
    assert len(server.hits) == 1 and "5 new overdue" in _text(server.hits[0])


async def test_a_one_off_window_from_the_store(tmp_path: Path, endpoint: Endpoint) -> None:
    server = await endpoint()
    clock = FakeClock(NIGHT)
    async with dispatching(tmp_path / "s.db", [slack(server.url)], clock, plans={}) as (
        dispatcher,
        store,
        _,
    ):
        now = clock.now()
        await store.add_quiet("slack", start=now, end=now + 1800, reason="upgrade", now=now)
        clock.advance(2)  # the dispatcher re-reads windows every second
        await settle()
        await store.enqueue([(e, ["slack"]) for e in overdue(4)], clock.now())
        dispatcher.notify()
        for _ in range(5):
            await settle()
            clock.advance(300)
        await settle()
        assert server.hits == []
        clock.set(now + 1800)
        await server.until(lambda r: len(r.hits) == 1, what="the digest")
        await settle()
    assert "4 new overdue" in _text(server.hits[0])


async def test_a_schedule_quiet_for_ever_holds_and_shows_what_it_holds(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    """Settings refuse it; if one reaches the dispatcher anyway (core.quiet answers FOREVER),
    its rows stay held, counted and pending with a finite next attempt, day after day."""
    server = await endpoint()
    clock = FakeClock(NIGHT)
    always = quiet.Schedule((quiet.Daily(time(0), time(1)), quiet.Daily(time(1), time(0))), UTC)
    async with dispatching(
        tmp_path / "s.db",
        [slack(server.url)],
        clock,
        plans={"slack": digest.Plan(quiet=always)},
        events=(later := overdue(6))[:3],
    ) as (dispatcher, store, metrics):
        for day in range(3):  # days pass: still held, re-held ahead each time it looks
            await settle()
            clock.advance(86400)
            await store.enqueue([(later[3 + day], ["slack"])], clock.now())
            dispatcher.notify()
        await settle()
        assert len(await outbox_rows(store, state="pending", limit=100)) == 6
        due = await store.next_due("slack", now=clock.now())
        assert due is not None and clock.now() < due < clock.now() + 86400
        assert metrics.notifications_held.labels("slack")._value.get() == 6
        assert statuses(dispatcher.lanes, clock.now())["slack"] == "quiet"
    assert server.hits == []
