"""The Teams sink against a loopback receiver shaped like a Workflows webhook (202 on success),
and the dispatcher's retries and dead letters applied to its answers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from monitor.core import digest
from monitor.core.backoff import Schedule
from monitor.core.events import EventType
from monitor.sinks import Delivered, Gone, Limits, Rejected, RetryLater, TeamsSink
from tests.sinks.sinkkit import Hit, Receiver, Respond, make_event, running, scripted
from tests.test_dispatcher import rows_of, until

MakeReceiver = Callable[..., Awaitable[Receiver]]


async def workflow(hit: Hit) -> web.StreamResponse:
    """Accept only what a Workflows "post card" flow can use: one Adaptive Card attachment."""
    message: Any = hit.json()
    ok = (
        message.get("type") == "message"
        and len(message["attachments"]) == 1
        and message["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
        and message["attachments"][0]["content"]["type"] == "AdaptiveCard"
    )
    return web.Response(status=202 if ok else 400, text="" if ok else "BadRequest")


def teams(url: str, **limits: object) -> TeamsSink:
    chosen = Limits(**{"concurrency": 1, "schedule": Schedule((0.0, 0.05, 0.05), 0.0), **limits})  # type: ignore[arg-type]
    return TeamsSink("teams", url=url, limits=chosen, allow_private=True)


async def post(url: str) -> object:
    sink = teams(url)
    try:
        return await sink.deliver(
            make_event(1, 1, kind=EventType.REVIEW_OVERDUE), b"{}", now=time.time()
        )
    finally:
        await sink.aclose()


async def test_posts_one_adaptive_card_with_facts(endpoint: MakeReceiver) -> None:
    server = await endpoint(workflow)
    assert (
        await post(server.url + "/workflows/abc/triggers/manual/paths/invoke?sig=x") == Delivered()
    )
    (hit,) = server.hits
    message: Any = hit.json()
    card = message["attachments"][0]["content"]
    assert card["version"] == "1.4"
    assert card["body"][0]["text"] == "Review overdue: course=BIO101"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["course"] == "BIO101"
    assert message["summary"].startswith("Review overdue — course=BIO101")
    assert "webhook-signature" not in hit.headers


def card_text(hit: Hit) -> str:
    """What a person reads on the posted card: its text blocks and fact values."""
    message: Any = hit.json()
    card = message["attachments"][0]["content"]
    said = [message["summary"]]
    for block in card["body"]:
        said += [block["text"]] if "text" in block else [f["value"] for f in block["facts"]]
    return "\n".join(said)


@pytest.mark.parametrize(
    ("zone", "due", "detected"),
    [
        ({}, "08:00 UTC", "09:00 UTC"),
        ({"zone": ZoneInfo("America/Chicago")}, "02:00 CST", "03:00 CST"),
    ],
    ids=["default-utc", "chicago"],
)
async def test_cards_and_digests_show_times_in_the_display_zone(
    endpoint: MakeReceiver, zone: dict[str, tzinfo], due: str, detected: str
) -> None:
    server = await endpoint(workflow)
    sink = TeamsSink("teams", url=server.url, allow_private=True, **zone)  # type: ignore[arg-type]
    sent = datetime(2026, 11, 18, 9, 0, tzinfo=UTC).timestamp()  # make_event's detection time
    events = [make_event(n, 1, kind=EventType.REVIEW_OVERDUE) for n in (1, 2)]
    (found,) = digest.group(enumerate(events, start=1), digest.Policy())
    try:
        assert await sink.deliver(events[0], b"{}", now=sent) == Delivered()
        assert await sink.deliver_digest(found, now=sent, status_url=None) == Delivered()
    finally:
        await sink.aclose()
    alert, summary = (card_text(hit) for hit in server.hits)
    assert f"The review was due 2026-11-18 {due} and is 1h late." in alert
    assert f"detected 2026-11-18 {detected}" in alert
    assert f"2026-11-18 {due}" in alert.splitlines()  # the "review by" fact
    assert summary.count(f"was due 2026-11-18 {due}") == 2
    other = "CST" if due.endswith("UTC") else "UTC"
    assert other not in alert and other not in summary


def says(status: int, headers: dict[str, str] | None = None) -> Respond:
    async def respond(_hit: Hit) -> web.StreamResponse:
        return web.Response(status=status, text="nope", headers=headers)

    return respond


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (410, Gone("HTTP 410 nope: the receiver is gone")),
        (404, Gone("HTTP 404 nope: the receiver is gone")),
        (400, Rejected("HTTP 400 nope")),
        (401, Rejected("HTTP 401 nope")),
        (500, RetryLater("HTTP 500 nope", 7.0)),
        (429, RetryLater("HTTP 429 nope", 7.0)),
    ],
)
async def test_answers_are_classified_like_every_http_sink(
    endpoint: MakeReceiver, status: int, expected: object
) -> None:
    server = await endpoint(says(status, {"Retry-After": "7"}))
    assert await post(server.url) == expected


async def test_a_503_then_202_is_retried_and_delivered(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    server = await endpoint(scripted(503, 503, 202))
    async with running(tmp_path / "s.db", [teams(server.url)], events=[make_event(1, 1)]) as (
        _,
        store,
    ):
        await until(lambda: _has(store, "delivered"), "delivered after two 503s")
    assert len(server.hits) == 3


async def test_a_400_is_dead_lettered_at_once(endpoint: MakeReceiver, tmp_path: Path) -> None:
    server = await endpoint(says(400))
    async with running(tmp_path / "s.db", [teams(server.url)], events=[make_event(1, 1)]) as (
        _,
        store,
    ):
        await until(lambda: _has(store, "dead"), "dead letter")
    assert len(server.hits) == 1


async def _has(store: Any, state: str) -> bool:
    return bool((await rows_of(store)).get(state))
