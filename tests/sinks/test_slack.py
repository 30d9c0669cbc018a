"""The Slack sink against a loopback endpoint that answers the way Slack's webhooks do."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from monitor.core import digest
from monitor.core.events import EventType
from monitor.sinks import Delivered, Gone, Rejected, RetryLater, SlackSink
from tests.sinks.sinkkit import Hit, Receiver, Respond, make_event

MakeReceiver = Callable[..., Awaitable[Receiver]]


def slack_says(status: int, text: str, headers: dict[str, str] | None = None) -> Respond:
    async def respond(_hit: Hit) -> web.StreamResponse:
        return web.Response(status=status, text=text, headers=headers)

    return respond


async def post(url: str) -> object:
    sink = SlackSink("slack", url=url, allow_private=True)
    event = make_event(1, 1, kind=EventType.REVIEW_OVERDUE)
    try:
        return await sink.deliver(event, b"{}", now=time.time())
    finally:
        await sink.aclose()


async def test_posts_a_block_kit_message_without_webhook_headers(endpoint: MakeReceiver) -> None:
    server = await endpoint(slack_says(200, "ok"))
    assert await post(server.url + "/services/T000/B000/XXXX") == Delivered()
    (hit,) = server.hits
    message = hit.json()
    assert isinstance(message, dict)
    assert message["text"].startswith("Review overdue — course=BIO101")
    assert message["blocks"][0]["type"] == "header"
    assert "webhook-signature" not in hit.headers
    assert hit.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (404, "channel_not_found", Gone("HTTP 404 channel_not_found: the receiver is gone")),
        (410, "channel_is_archived", Gone("HTTP 410 channel_is_archived: the receiver is gone")),
        (400, "invalid_payload", Rejected("HTTP 400 invalid_payload")),
        (403, "action_prohibited", Rejected("HTTP 403 action_prohibited")),
        (500, "rollup_error", RetryLater("HTTP 500 rollup_error")),
    ],
)
async def test_slack_errors_are_classified_with_slacks_words(
    endpoint: MakeReceiver, status: int, text: str, expected: object
) -> None:
    server = await endpoint(slack_says(status, text))
    assert await post(server.url) == expected


async def test_429_carries_retry_after(endpoint: MakeReceiver) -> None:
    server = await endpoint(slack_says(429, "rate_limited", {"Retry-After": "3"}))
    assert await post(server.url) == RetryLater("HTTP 429 rate_limited", 3.0)


@pytest.mark.parametrize(
    ("kind", "colour"),
    [
        (EventType.REVIEW_OVERDUE, "#D92D20"),
        (EventType.REVIEW_OVERDUE_RESOLVED, "#12B76A"),
        (EventType.STATUS_CHANGED, "#98A2B3"),
    ],
)
async def test_the_attachment_bar_is_the_severity_colour(
    endpoint: MakeReceiver, kind: EventType, colour: str
) -> None:
    server = await endpoint(slack_says(200, "ok"))
    sink = SlackSink("slack", url=server.url, allow_private=True)
    try:
        await sink.deliver(make_event(1, 1, kind=kind), b"{}", now=time.time())
    finally:
        await sink.aclose()
    (hit,) = server.hits
    message = hit.json()
    assert isinstance(message, dict)
    (attachment,) = message["attachments"]
    assert attachment["color"] == colour
    assert attachment["blocks"][0]["type"] == "section"


@pytest.mark.parametrize(
    ("zone", "due"),
    [({}, "08:00 UTC"), ({"zone": ZoneInfo("America/Chicago")}, "02:00 CST")],
    ids=["default-utc", "chicago"],
)
async def test_a_digest_shows_times_in_the_display_zone(
    endpoint: MakeReceiver, zone: dict[str, tzinfo], due: str
) -> None:
    server = await endpoint(slack_says(200, "ok"))
    sink = SlackSink("slack", url=server.url, allow_private=True, **zone)  # type: ignore[arg-type]
    events = [make_event(n, 1, kind=EventType.REVIEW_OVERDUE) for n in (1, 2, 3)]
    (found,) = digest.group(enumerate(events, start=1), digest.Policy())
    sent = datetime(2026, 11, 18, 9, 0, tzinfo=UTC).timestamp()
    try:
        assert await sink.deliver_digest(found, now=sent, status_url=None) == Delivered()
    finally:
        await sink.aclose()
    (hit,) = server.hits
    message: Any = hit.json()
    items = message["blocks"][1]["text"]["text"]
    assert items.count(f"The review was due 2026-11-18 {due} and is 1h late.") == 3
    assert ("CST" if due.endswith("UTC") else "UTC") not in items
