"""The SSRF guard at connect time: names resolving to non-public addresses are never connected to
unless the sink sets allow_private. DNS is faked (a resolver mapping names to addresses), the
receivers are real, and every connection that is made goes to 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import structlog
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor import logs
from monitor.core.events import EventType
from monitor.sinks import AlertmanagerSink, Delivered, RetryLater, SlackSink, WebhookSink
from monitor.sinks.base import Sink
from monitor.sinks.guard import AddressRefused, GuardedResolver
from tests.sinks.sinkkit import Hit, Receiver, make_event, running

MakeReceiver = Callable[..., Awaitable[Receiver]]
PATH_SECRET = "T0/B0/path-secret"


class FakeDns(AbstractResolver):
    """A DNS server in a dict; records every name it was asked about."""

    def __init__(self, answers: Mapping[str, Sequence[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        return None


async def deliver(sink: Sink) -> object:
    event = make_event(1, 1, kind=EventType.REVIEW_OVERDUE)  # a type every sink posts
    try:
        return await sink.deliver(event, b"{}", now=time.time())
    finally:
        await sink.aclose()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fd00:ec2::254", "unique-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
    ],
)
async def test_a_name_resolving_to_a_refused_address_is_not_connected_to(
    address: str, reason: str
) -> None:
    dns = FakeDns({"evil.example": [address]})
    sink = WebhookSink("hook", url=f"https://evil.example/{PATH_SECRET}", resolver=dns)
    outcome = await deliver(sink)
    assert dns.asked == ["evil.example"]  # the guard saw the answer at connect time
    assert isinstance(outcome, RetryLater)
    assert outcome.reason.startswith(f"address refused: {reason}")
    assert "evil.example" not in outcome.reason and PATH_SECRET not in outcome.reason


async def test_the_guard_is_what_stops_it_and_allow_private_lifts_it(
    endpoint: MakeReceiver,
) -> None:
    """`evil.example` resolves to a real receiver on loopback: refused and never reached
    without the opt-in, delivered with it."""
    server = await endpoint()
    port = server.url.rsplit(":", 1)[1]
    url = f"http://evil.example:{port}/hook"
    dns = FakeDns({"evil.example": ["127.0.0.1"]})

    refused = await deliver(WebhookSink("hook", url=url, resolver=dns))
    assert isinstance(refused, RetryLater) and "address refused: loopback" in refused.reason
    assert server.hits == []

    allowed = await deliver(WebhookSink("hook", url=url, resolver=dns, allow_private=True))
    assert allowed == Delivered()
    assert len(server.hits) == 1
    assert dns.asked == ["evil.example", "evil.example"]


async def test_only_public_answers_of_a_mixed_name_are_kept() -> None:
    dns = FakeDns({"mixed.example": ["10.0.0.1", "192.0.2.10", "8.8.8.8", "169.254.169.254"]})
    kept = await GuardedResolver(dns).resolve("mixed.example", 443)
    assert [result["host"] for result in kept] == ["8.8.8.8"]
    with pytest.raises(AddressRefused, match="address refused: private"):
        await GuardedResolver(FakeDns({"x": ["10.1.2.3", "127.0.0.1"]})).resolve("x", 443)


@pytest.mark.parametrize(
    "make",
    [
        lambda url: WebhookSink("s", url=url),
        lambda url: SlackSink("s", url=url),
        lambda url: AlertmanagerSink("s", url=url),
    ],
)
async def test_ip_literals_are_refused_before_connecting(
    endpoint: MakeReceiver, make: Callable[[str], Sink]
) -> None:
    """aiohttp never asks a resolver about an IP literal, so the sink checks it itself."""
    server = await endpoint()
    outcome = await deliver(make(server.url + "/hook"))
    assert isinstance(outcome, RetryLater)
    assert outcome.reason.startswith("address refused: loopback")
    assert server.hits == []


async def test_localhost_is_delivered_to_with_allow_private(endpoint: MakeReceiver) -> None:
    """The system resolver, no fakes: a name resolving to 127.0.0.1 reaches a real receiver."""
    server = await endpoint()
    port = server.url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/hook"
    assert await deliver(WebhookSink("hook", url=url, allow_private=True)) == Delivered()
    assert len(server.hits) == 1
    refused = await deliver(WebhookSink("hook", url=url))
    assert isinstance(refused, RetryLater) and "loopback" in refused.reason
    assert len(server.hits) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda url: SlackSink("s", url=url, allow_private=True),
        lambda url: AlertmanagerSink("s", url=url, allow_private=True),
    ],
)
async def test_slack_and_alertmanager_never_follow_redirects(
    endpoint: MakeReceiver, make: Callable[[str], Sink]
) -> None:
    async def redirect(hit: Hit) -> web.StreamResponse:
        if hit.path.startswith("/elsewhere"):
            return web.Response(status=200)
        raise web.HTTPTemporaryRedirect("/elsewhere")

    server = await endpoint(redirect)
    outcome = await deliver(make(server.url + "/hook"))
    assert isinstance(outcome, RetryLater) and "redirects are not followed" in outcome.reason
    (only,) = server.hits
    assert only.path.startswith("/hook")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.configure("json", "debug", stream=out)
    yield out
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


async def test_a_refused_delivery_is_logged_naming_the_sink_not_the_url(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    dns = FakeDns({"evil.example": ["169.254.169.254"]})
    sink = WebhookSink("metadata-hook", url=f"https://evil.example/{PATH_SECRET}", resolver=dns)
    async with running(tmp_path / "s.db", [sink], events=[make_event(1, 1)]):
        for _ in range(100):
            if "delivery.failed" in log_lines.getvalue():
                break
            await asyncio.sleep(0.05)
    events = [json.loads(line) for line in log_lines.getvalue().splitlines() if line.strip()]
    (failed, *_) = [e for e in events if e["event"] == "delivery.failed"]
    assert failed["sink"] == "metadata-hook"
    assert failed["reason"].startswith("address refused: link-local")
    assert PATH_SECRET not in log_lines.getvalue()
