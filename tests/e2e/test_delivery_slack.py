"""A Slack-like endpoint that answers 429 + Retry-After to anything posted sooner than its
window after the last accepted message: every alert still arrives, once, in order per session,
and after a 429 nothing is posted before Retry-After has passed."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from aiohttp import web

from monitor.core.backoff import Schedule
from monitor.sinks import Limits, SlackSink
from monitor.store import SqliteStore
from tests.sinks.sinkkit import Hit, Receiver, make_event, running

pytestmark = pytest.mark.timeout(90)
WINDOW = 1.5  # stricter than Slack's 1/s, so the 429 path is exercised on every other post
RETRY_AFTER = 1


class SlackLike:
    def __init__(self) -> None:
        self.accepted: list[tuple[float, str]] = []
        self.throttled: list[float] = []

    async def __call__(self, hit: Hit) -> web.StreamResponse:
        now = time.monotonic()
        if self.accepted and now - self.accepted[-1][0] < WINDOW:
            self.throttled.append(now)
            return web.Response(
                status=429, text="rate_limited", headers={"Retry-After": str(RETRY_AFTER)}
            )
        message = hit.json()
        assert isinstance(message, dict)
        self.accepted.append((now, message["attachments"][0]["blocks"][-1]["elements"][0]["text"]))
        return web.Response(status=200, text="ok")


async def test_throttled_slack_gets_everything_once_and_in_order(tmp_path: Path) -> None:
    slack = SlackLike()
    server = Receiver(slack)
    await server.start()
    events = [make_event(session, step) for step in (1, 2, 3) for session in (1, 2)]
    schedule = Schedule((0.0, 0.5, 0.5, 0.5, 0.5, 0.5), jitter=0.0)
    limits = Limits(concurrency=1, rate=1.0, schedule=schedule)
    sink = SlackSink(
        "slack", url=server.url + "/services/T0/B0/secret", limits=limits, allow_private=True
    )
    try:
        async with running(tmp_path / "s.db", [sink], events=events):
            await server.until(lambda r: len(slack.accepted) == len(events), within=60)
    finally:
        await server.stop()

    posted = [next(e.id for e in events if e.id in text) for _, text in slack.accepted]
    assert sorted(posted) == sorted(e.id for e in events)  # all, and each once
    for session in (1, 2):
        ours = [e.id for e in events if e.key and e.key.session_sid.endswith(f"{session:032x}")]
        assert [i for i in posted if i in ours] == ours  # order per session kept
    assert slack.throttled, "the endpoint never throttled: the 429 path went untested"
    arrivals = sorted([at for at, _ in slack.accepted] + slack.throttled)
    for refused in slack.throttled:
        later = [at for at in arrivals if at > refused]
        if later:
            assert later[0] - refused >= RETRY_AFTER * 0.95  # Retry-After honoured
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(arrivals))  # ≤ 1/s
    async with SqliteStore(tmp_path / "s.db") as store:
        delivered = await store.entries(state="delivered", sink="slack", limit=100)
    assert len(delivered) == len(events)
