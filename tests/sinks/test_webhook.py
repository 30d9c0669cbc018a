"""The generic webhook sink against real loopback receivers, verified by `standardwebhooks`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.core.events import Event
from monitor.sinks import Delivered, Gone, Rejected, RetryLater, WebhookSink
from monitor.sinks.webhook import sign
from tests.sinks.sinkkit import (
    SECRET,
    SECRET_OLD,
    Hit,
    Receiver,
    bound_socket,
    make_event,
    verifier,
)

MakeReceiver = Callable[..., Awaitable[Receiver]]


def body_of(event: Event) -> bytes:
    """The bytes the outbox stores for an event (the store's own encoding)."""
    return json.dumps(event.to_wire(), separators=(",", ":")).encode()


async def deliver(sink: WebhookSink, event: Event, *, now: float | None = None) -> object:
    try:
        return await sink.deliver(event, body_of(event), now=time.time() if now is None else now)
    finally:
        await sink.aclose()


@pytest.fixture
def bangkok() -> Iterator[None]:
    """The process runs with TZ=Asia/Bangkok (UTC+7): signing must not notice."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Bangkok"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def test_every_delivery_verifies_with_the_reference_library(endpoint: MakeReceiver) -> None:
    rejected: list[str] = []
    server = await endpoint(verifier(SECRET, rejected=rejected))
    sink = WebhookSink("hook", url=server.url + "/hook", secrets=[SECRET], allow_private=True)
    events = [make_event(1, step) for step in range(1, 4)]
    try:
        outcomes = [await sink.deliver(e, body_of(e), now=time.time()) for e in events]
    finally:
        await sink.aclose()
    assert outcomes == [Delivered()] * 3
    assert rejected == []
    assert server.ids() == [e.id for e in events]
    assert [hit.body for hit in server.hits] == [body_of(e) for e in events]
    assert all(hit.headers["Content-Type"] == "application/json" for hit in server.hits)


async def test_a_tampered_body_or_another_secret_does_not_verify(endpoint: MakeReceiver) -> None:
    server = await endpoint()
    event = make_event(1, 1)
    assert (
        await deliver(
            WebhookSink("hook", url=server.url, secrets=[SECRET], allow_private=True), event
        )
        == Delivered()
    )
    hit = server.hits[0]
    Webhook(SECRET).verify(hit.body, dict(hit.headers))
    tampered = hit.body.replace(b"step-1", b"step-2")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, dict(hit.headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_OLD).verify(hit.body, dict(hit.headers))


async def test_a_six_minute_old_timestamp_is_refused_and_dead_lettered(
    endpoint: MakeReceiver,
) -> None:
    rejected: list[str] = []
    server = await endpoint(verifier(SECRET, rejected=rejected))
    sink = WebhookSink("hook", url=server.url, secrets=[SECRET], allow_private=True)
    outcome = await deliver(sink, make_event(1, 1), now=time.time() - 360)
    assert outcome == Rejected("HTTP 400")
    assert rejected == ["Message timestamp too old"]


async def test_rotation_signs_with_every_secret(endpoint: MakeReceiver) -> None:
    server = await endpoint()
    sink = WebhookSink("hook", url=server.url, secrets=[SECRET, SECRET_OLD], allow_private=True)
    assert await deliver(sink, make_event(1, 1)) == Delivered()
    hit = server.hits[0]
    entries = hit.headers["webhook-signature"].split(" ")
    assert [entry.split(",")[0] for entry in entries] == ["v1", "v1"]
    for secret in (SECRET, SECRET_OLD):
        Webhook(secret).verify(hit.body, dict(hit.headers))


@pytest.mark.usefixtures("bangkok")
async def test_signatures_verify_when_the_local_zone_is_not_utc(endpoint: MakeReceiver) -> None:
    rejected: list[str] = []
    server = await endpoint(verifier(SECRET, rejected=rejected))
    sink = WebhookSink("hook", url=server.url, secrets=[SECRET], allow_private=True)
    assert time.localtime().tm_gmtoff == 7 * 3600
    assert await deliver(sink, make_event(1, 1)) == Delivered()
    assert rejected == []
    stamp = int(server.hits[0].headers["webhook-timestamp"])
    assert abs(stamp - time.time()) < 60  # UTC epoch seconds, not shifted by +7 h


def test_signer_matches_the_reference_signer_given_a_utc_instant() -> None:
    body = b'{"type":"x","timestamp":"2026-11-18T09:00:00Z","data":{}}'
    stamp = 1_795_000_000
    ours = sign([SECRET], "evt_1", stamp, body)
    reference = Webhook(SECRET).sign("evt_1", datetime.fromtimestamp(stamp, UTC), body.decode())
    assert ours == reference


async def test_each_attempt_has_a_fresh_timestamp_and_the_same_id(endpoint: MakeReceiver) -> None:
    server = await endpoint()
    sink = WebhookSink("hook", url=server.url, secrets=[SECRET], allow_private=True)
    event, now = make_event(1, 1), time.time()
    try:
        for offset in (0, 5, 65):
            await sink.deliver(event, body_of(event), now=now - 120 + offset)
    finally:
        await sink.aclose()
    assert server.ids() == [event.id] * 3
    stamps = [int(hit.headers["webhook-timestamp"]) for hit in server.hits]
    assert stamps == [int(now - 120), int(now - 115), int(now - 55)]
    assert len({hit.headers["webhook-signature"] for hit in server.hits}) == 3


async def test_extra_headers_are_sent_but_cannot_replace_the_signature_headers(
    endpoint: MakeReceiver,
) -> None:
    server = await endpoint()
    sink = WebhookSink(
        "hook",
        url=server.url,
        secrets=[SECRET],
        headers={"Authorization": "Bearer test-token", "webhook-id": "forged"},
        allow_private=True,
    )
    event = make_event(1, 1)
    assert await deliver(sink, event) == Delivered()
    assert server.hits[0].headers["Authorization"] == "Bearer test-token"
    assert server.ids() == [event.id]


async def test_redirects_are_failures_and_never_followed(endpoint: MakeReceiver) -> None:
    async def redirect(hit: Hit) -> web.StreamResponse:
        if hit.path.startswith("/admin"):
            return web.Response(status=200)
        raise web.HTTPFound("/admin/delete-everything")

    server = await endpoint(redirect)
    outcome = await deliver(
        WebhookSink("hook", url=server.url + "/hook", allow_private=True), make_event(1, 1)
    )
    assert isinstance(outcome, RetryLater)
    assert "redirects are not followed" in outcome.reason
    assert [hit.path for hit in server.hits] == ["/hook"]


def _answer(
    status: int, headers: dict[str, str] | None = None
) -> Callable[[Hit], Awaitable[web.StreamResponse]]:
    async def respond(_hit: Hit) -> web.StreamResponse:
        return web.Response(status=status, headers=headers, text="nope")

    return respond


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Delivered()),
        (202, Delivered()),
        (400, Rejected("HTTP 400")),
        (401, Rejected("HTTP 401")),
        (404, Rejected("HTTP 404")),
        (410, Gone("HTTP 410: the receiver is gone")),
        (408, RetryLater("HTTP 408")),
        (500, RetryLater("HTTP 500")),
        (502, RetryLater("HTTP 502")),
    ],
)
async def test_statuses_map_to_outcomes(
    endpoint: MakeReceiver, status: int, expected: object
) -> None:
    server = await endpoint(_answer(status))
    assert (
        await deliver(WebhookSink("hook", url=server.url, allow_private=True), make_event(1, 1))
        == expected
    )


async def test_retry_after_seconds_and_http_date_are_read(endpoint: MakeReceiver) -> None:
    now = time.time()
    later = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=90), usegmt=True)
    seconds = await endpoint(_answer(429, {"Retry-After": "7"}))
    dated = await endpoint(_answer(503, {"Retry-After": later}))
    first = await deliver(
        WebhookSink("a", url=seconds.url, allow_private=True), make_event(1, 1), now=now
    )
    second = await deliver(
        WebhookSink("b", url=dated.url, allow_private=True), make_event(1, 1), now=now
    )
    assert first == RetryLater("HTTP 429", 7.0)
    assert isinstance(second, RetryLater)
    assert second.after is not None
    assert 88 <= second.after <= 90


async def test_a_receiver_that_never_answers_times_out(endpoint: MakeReceiver) -> None:
    server = await endpoint(Hit.hang)
    sink = WebhookSink("hook", url=server.url, timeout=0.3, allow_private=True)
    assert await deliver(sink, make_event(1, 1)) == RetryLater("timed out")


async def test_connection_refused_is_retried_without_naming_the_url() -> None:
    sock = bound_socket()
    host, port = sock.getsockname()
    url = f"http://{host}:{port}/hook/s3cret-path"
    try:
        outcome = await deliver(WebhookSink("hook", url=url, allow_private=True), make_event(1, 1))
    finally:
        sock.close()
    assert outcome == RetryLater("connection failed (connect)")


async def test_a_huge_response_body_is_not_read_whole(endpoint: MakeReceiver) -> None:
    sent: list[int] = []

    async def flood(hit: Hit) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_length = 50 * 1024 * 1024
        await response.prepare(hit.request)
        chunk = b"x" * (1024 * 1024)
        try:
            for _ in range(50):
                await response.write(chunk)
                sent.append(len(chunk))
        except (ConnectionError, RuntimeError):
            pass  # the client hung up after reading its cap, as it should
        return response

    server = await endpoint(flood)
    assert (
        await deliver(WebhookSink("hook", url=server.url, allow_private=True), make_event(1, 1))
        == Delivered()
    )
