"""Short outages, slow receivers, shared Slack webhooks and on-time retries: the dispatcher
against real receivers on 127.0.0.1 and a real SQLite outbox.

Timing is asserted with generous bounds only: the point of each test is a difference of
seconds (30 s held by a breaker, 1 s late, 10 s read cap), not milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from monitor import service
from monitor.cli import main
from monitor.core import delivery
from monitor.core.backoff import Schedule
from monitor.lanes import statuses as lane_statuses
from monitor.settings import Settings
from monitor.sinks import SlackSink
from monitor.store import SqliteStore
from tests.sinks.sinkkit import Hit, make_event, running, scripted
from tests.test_dispatcher import MakeReceiver, _delivered, hook, until

HOURS = Schedule((0.0, 3600.0, 3600.0), jitter=0.0)
"""Retries an hour apart: only a probe and the recovery that follows can deliver sooner."""


async def test_a_blip_seen_by_concurrent_deliveries_is_one_failure_not_an_outage(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    # Five deliveries in flight together all get a 500: one failure, not five in a row.
    server = await endpoint(scripted(*[500] * 5))
    events = [make_event(session, step) for step in (1, 2) for session in range(1, 6)]
    sink = hook(
        "hook",
        server.url,
        schedule=HOURS,
        concurrency=5,
        breaker_failures=3,
        breaker_cooldown=30.0,
    )
    statuses: set[str] = set()
    async with running(tmp_path / "s.db", [sink], events=events) as (dispatcher, store):
        began = time.monotonic()

        async def all_delivered() -> bool:
            statuses.update(lane_statuses(dispatcher.lanes, dispatcher.clock.now()).values())
            return await _delivered(store, len(events))

        await until(all_delivered, "every alert delivered", within=10.0)
        took = time.monotonic() - began
    print(f"blip of 5 concurrent 500s: all {len(events)} delivered after {took:.2f} s")
    assert "down" not in statuses  # the breaker never held the sink
    assert took < 10.0  # a probe ~1 s after the blip, not the 30 s cooldown or the 1 h retry
    for session in range(1, 6):
        ours = [e.id for e in events if e.key and e.key.session_sid.endswith(f"{session:032x}")]
        assert [i for i in dict.fromkeys(server.ids()) if i in ours] == ours  # order per session


async def test_a_retry_goes_when_it_falls_due_not_at_the_next_idle_tick(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    server = await endpoint(scripted(500, 500, 500))
    step = 0.25
    sink = hook("hook", server.url, schedule=Schedule((0.0, step, step, step), jitter=0.0))
    async with running(tmp_path / "s.db", [sink], events=[make_event(1, 1)]) as (_, store):
        await until(lambda: _delivered(store, 1), "delivered")
    gaps = [b.at - a.at for a, b in itertools.pairwise(server.hits)]
    print("retry gaps:", [round(gap, 3) for gap in gaps])
    assert len(gaps) == 3
    assert all(step * 0.9 <= gap < step + 0.35 for gap in gaps), gaps  # was ~1 s each


async def test_two_slack_entries_for_one_webhook_share_its_one_message_per_second(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    slack = await endpoint()
    other = await endpoint()
    sinks = [
        SlackSink("oncall", url=slack.url + "/services/T/B/x", allow_private=True),
        SlackSink(  # another route, same webhook
            "bio101", url=slack.url + "/services/T/B/x", allow_private=True
        ),
        SlackSink("elsewhere", url=other.url + "/services/T/C/y", allow_private=True),
    ]
    events = [make_event(n, 1) for n in range(1, 4)]
    async with running(tmp_path / "s.db", sinks, events=events) as (_, store):
        await until(lambda: _delivered(store, 9), "all delivered", within=20.0)
    arrivals = sorted(hit.at for hit in slack.hits)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    print("gaps between posts to the shared webhook:", [round(gap, 2) for gap in gaps])
    assert len(arrivals) == 6
    assert min(gaps) >= 0.9  # ≤ 1 message/s to that URL, across both entries
    assert len(other.hits) == 3  # a different webhook has its own pace


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_receiver_answering_in_12s_within_a_15s_timeout_is_delivered(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    async def slow(_hit: Hit) -> web.StreamResponse:
        await asyncio.sleep(12.0)
        return web.Response(status=204)

    server = await endpoint(slow)
    sink = hook("slow", server.url, timeout=15.0, schedule=HOURS)
    options = {"lease": delivery.lease_for(15.0)}
    async with running(
        tmp_path / "s.db", [sink], events=[make_event(1, 1)], dispatcher_options=options
    ) as (_, store):
        await until(lambda: _delivered(store, 1), "delivered", within=40.0)
        (entry,) = await store.entries(state="delivered", sink="slow", limit=1)
    assert len(server.hits) == 1
    assert entry.attempts == 1


async def test_the_lease_and_the_attempt_bound_follow_the_longest_sink_timeout(
    tmp_path: Path,
) -> None:
    settings = Settings(
        api={"base_url": "http://127.0.0.1:9"},
        state={"path": tmp_path / "spmon.db"},
        http={"listen": ""},
        watches=[],
        sinks=[
            {
                "name": "quick",
                "type": "webhook",
                "url": "http://127.0.0.1:9/a",
                "timeout": "5s",
                "allow_private": True,
                "unsigned": True,
            },
            {
                "name": "slow",
                "type": "webhook",
                "url": "http://127.0.0.1:9/b",
                "timeout": "100s",
                "allow_private": True,
                "unsigned": True,
            },
        ],
    )
    async with service.build(settings, serve_http=False) as svc:
        lease = svc.dispatcher.lease
    assert delivery.attempt_bound(lease) >= 100.0 + 10.0  # never cuts the 100 s receiver
    assert lease == delivery.lease_for(100.0)


async def test_outbox_retry_pending_sends_a_backed_off_backlog_now_beside_a_running_spmon(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    """Rows an earlier run backed off for an hour; the receiver is fixed; the operator does
    not want to wait: `spmon outbox retry --pending --sink hook` beside the running service."""
    path = tmp_path / "s.db"
    events = [make_event(n, 1) for n in (1, 2, 3)]
    async with SqliteStore(path) as store:
        now = time.time()
        await store.enqueue([(e, ["hook"]) for e in events], now)
        for row in await store.claim("hook", now=now, limit=10, owner="old", lease=60):
            await store.mark_retry(row.id, owner="old", next_attempt_at=now + 3600, error="500")
    server = await endpoint()
    async with running(path, [hook("hook", server.url)]) as (_, store):
        await asyncio.sleep(1.5)
        assert server.hits == []  # waiting for its retry time, as it should
        result = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["outbox", "retry", "--pending", "--sink", "hook", "--db", str(path)],
        )
        assert result.exit_code == 0, result.output
        began = time.monotonic()
        await server.until(lambda r: len(r.hits) == 3, within=5.0, what="backlog sent")
        took = time.monotonic() - began
    print(f"outbox retry --pending: backlog delivered {took:.2f} s after the command")
    assert sorted(server.ids()) == sorted(e.id for e in events)
