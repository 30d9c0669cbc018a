"""How many messages 200 simultaneous overdue reviews produce per sink type, without and
with `digest: {window: 2m}`, against real receivers on 127.0.0.1 (HTTP and SMTP) on a
FakeClock. The numbers are the issue's closing note; the test keeps them true."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core import digest
from monitor.sinks import AlertmanagerSink, EmailSink, Sink, SmtpOptions, TeamsSink, WebhookSink
from tests.clockkit import FakeClock
from tests.digestkit import FAST, dispatching, overdue, settle, slack
from tests.sinks.sinkkit import Receiver
from tests.sinks.smtpkit import Mailbox, smtp_server

Endpoint = Callable[..., Awaitable[Receiver]]
START = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
N = 200
EXPECTED = {  # (without digest, with digest)
    "slack": (N, 1),
    "teams": (N, 1),
    "email": (N, 1),
    "webhook": (N, N),  # machine sinks never batch (settings refuse digest: on them)
    "alertmanager": (N, N),
}


def _sink(kind: str, url: str, mailbox: Mailbox) -> Sink:
    if kind == "slack":
        return slack(url, kind)
    if kind == "teams":
        return TeamsSink(kind, url=url + "/flow", limits=FAST, allow_private=True)
    if kind == "webhook":
        return WebhookSink(kind, url=url, limits=FAST, allow_private=True)
    if kind == "alertmanager":
        return AlertmanagerSink(kind, url=url, limits=FAST, allow_private=True)
    options = SmtpOptions(
        host="127.0.0.1", port=mailbox.port, sender="spmon@example.edu",
        to=("coord@example.edu",), tls="none", allow_private=True,
    )  # fmt: skip
    return EmailSink(kind, options=options, limits=FAST)


@pytest.mark.parametrize("digested", [False, True], ids=["per-event", "digest"])
@pytest.mark.parametrize("kind", sorted(EXPECTED))
async def test_messages_for_200_simultaneous_overdue_reviews(
    tmp_path: Path, endpoint: Endpoint, kind: str, digested: bool
) -> None:
    server = await endpoint()
    clock = FakeClock(START)
    plan = digest.Plan(digest.Policy(window=120.0)) if digested else digest.NO_PLAN
    with smtp_server(Mailbox()) as mailbox:
        sink = _sink(kind, server.url, mailbox)
        async with dispatching(
            tmp_path / "s.db", [sink], clock, plans={kind: plan}, events=overdue(N)
        ) as (_, store, _metrics):
            await settle()
            clock.advance(121)
            async with asyncio.timeout(25):
                while (await store.stats()).pending.get(kind, 0):
                    await settle(5)
        sent = len(mailbox.messages) if kind == "email" else len(server.hits)
    print(f"MEASURE {kind} {'digest' if digested else 'per-event'}: {sent} messages")
    assert sent == EXPECTED[kind][digested]
