"""Digest sinks against a real Slack-like receiver on 127.0.0.1, on a FakeClock: the events of
a window become one message per group, covering every row, marked delivered together; a
failed digest is retried whole on the sink's schedule."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from monitor.core import digest
from monitor.sinks import WebhookSink
from tests.clockkit import FakeClock
from tests.digestkit import dispatching, overdue, settle, slack
from tests.sinks.sinkkit import Hit, Receiver, scripted
from tests.storekit import outbox_rows

Endpoint = Callable[..., Awaitable[Receiver]]
START = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
WINDOW = digest.Plan(digest.Policy(window=120.0, group_by=("course",), max_items=10))


def _text(hit: Hit) -> str:
    body = hit.json()
    assert isinstance(body, dict)
    # A single alert puts most of its blocks in a coloured attachment; a digest does not.
    return "\n".join(str(body.get(part, "")) for part in ("text", "blocks", "attachments"))


async def test_24_simultaneous_overdue_reviews_are_one_digest(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    server = await endpoint(scripted(200))
    clock = FakeClock(START)
    events = overdue(24)
    async with dispatching(
        tmp_path / "s.db", [slack(server.url)], clock, plans={"slack": WINDOW}, events=events
    ) as (_, store, metrics):
        await settle()
        clock.advance(60)
        await settle()
        assert server.hits == []  # the window is not over
        clock.advance(61)
        await server.until(lambda r: len(r.hits) == 1, what="one digest")
        await settle()
        clock.advance(600)
        await settle()
        rows = await outbox_rows(store, state=None, limit=100)
        assert metrics.digests.labels("slack")._value.get() == 1
    assert len(server.hits) == 1
    said = _text(server.hits[0])
    assert "course BIO101: 24 new overdue" in said
    assert "and 14 more" in said  # max_items 10 of 24
    assert {row.state for row in rows} == {"delivered"} and len(rows) == 24
    # The worst first: the review due at 07:37 is listed, the one due at 08:00 is "more".
    assert "07:37 UTC" in said and "08:00 UTC" not in said


async def test_one_message_per_group(tmp_path: Path, endpoint: Endpoint) -> None:
    server = await endpoint()
    clock = FakeClock(START)
    events = overdue(3, course="BIO101") + overdue(2, course="CHEM200", late_hours=5)
    # Distinct sessions per course (overdue() numbers sessions from 1000).
    events = (
        events[:3]
        + [
            type(e)(
                e.id + "c",
                e.type,
                e.observed_at,
                e.key._replace(session_sid=e.key.session_sid[:-1] + "f"),
                e.labels,
                None,
                e.snapshot,
            )  # type: ignore[union-attr]
            for e in events[3:]
        ]
    )
    async with dispatching(
        tmp_path / "s.db", [slack(server.url)], clock, plans={"slack": WINDOW}, events=events
    ):
        await settle()
        clock.advance(121)
        await server.until(lambda r: len(r.hits) == 2, what="two digests")
    said = sorted(_text(hit) for hit in server.hits)
    assert "course BIO101: 3 new overdue" in said[0]
    assert "course CHEM200: 2 new overdue" in said[1]


async def test_a_failed_digest_is_retried_whole(tmp_path: Path, endpoint: Endpoint) -> None:
    server = await endpoint(scripted(500, 200))
    clock = FakeClock(START)
    async with dispatching(
        tmp_path / "s.db", [slack(server.url)], clock, plans={"slack": WINDOW}, events=overdue(6)
    ) as (_, store, _metrics):
        await settle()
        clock.advance(121)
        await server.until(lambda r: len(r.hits) == 1, what="first attempt")
        await settle()
        rows = await outbox_rows(store, state="pending", limit=100)
        assert len(rows) == 6 and {row.attempts for row in rows} == {1}
        clock.advance(5)  # the schedule's second step
        await server.until(lambda r: len(r.hits) == 2, what="the retry")
        await settle()
        rows = await outbox_rows(store, state="delivered", limit=100)
    assert len(rows) == 6
    assert _text(server.hits[0]) == _text(server.hits[1])  # the same digest, whole


async def test_a_lone_event_goes_as_the_plain_alert(tmp_path: Path, endpoint: Endpoint) -> None:
    server = await endpoint()
    clock = FakeClock(START)
    (event,) = overdue(1)
    async with dispatching(
        tmp_path / "s.db", [slack(server.url)], clock, plans={"slack": WINDOW}, events=[event]
    ):
        await settle()
        clock.advance(121)
        await server.until(lambda r: len(r.hits) == 1, what="the alert")
    assert event.id in _text(server.hits[0]) and "Digest" not in _text(server.hits[0])


async def test_a_webhook_never_batches(tmp_path: Path, endpoint: Endpoint) -> None:
    async def ok(_hit: Hit) -> web.StreamResponse:
        return web.Response(status=204)

    server = await endpoint(ok)
    clock = FakeClock(START)
    sink = WebhookSink("hook", url=server.url, secrets=[], allow_private=True)
    # A plan with a digest given to a machine sink anyway (settings refuse it) is ignored.
    async with dispatching(
        tmp_path / "s.db", [sink], clock, plans={"hook": WINDOW}, events=overdue(5)
    ):
        await server.until(lambda r: len(r.hits) == 5, what="five deliveries")


async def test_only_the_leader_sends_a_window_as_its_digest(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    """Replicas share one outbox: a replica that does not lead claims no digest rows, so a
    window is one message from the leader, not a part from each replica."""
    server = await endpoint(scripted(200))
    clock = FakeClock(START)
    leads = False
    async with dispatching(
        tmp_path / "s.db", [slack(server.url)], clock, plans={"slack": WINDOW},
        events=overdue(5), leading=lambda: leads,
    ) as (_, store, _metrics):  # fmt: skip
        await settle()
        clock.advance(121)
        await settle()
        clock.advance(10)
        await settle()
        assert server.hits == []
        assert {row.state for row in await outbox_rows(store, state=None, limit=10)} == {"pending"}
        leads = True  # the leader left; this replica took the leader row
        clock.advance(10)
        await server.until(lambda r: len(r.hits) == 1, what="the leader's digest")
    assert "5 new overdue" in _text(server.hits[0])
