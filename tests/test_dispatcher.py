"""The dispatcher against real sinks, a real SQLite outbox and receivers on 127.0.0.1.

Timing is asserted only as lower bounds (a retry did not come *before* its time); nothing
here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from structlog.typing import EventDict

from monitor.core.backoff import Schedule
from monitor.core.events import Event, EventType
from monitor.dispatcher import Dispatcher
from monitor.lanes import statuses
from monitor.metrics import Metrics
from monitor.sinks import AlertmanagerSink, Limits, WebhookSink
from monitor.store import SqliteStore
from tests.conftest import assert_no_secrets, named
from tests.sinks.sinkkit import (
    SECRET,
    Hit,
    Receiver,
    bound_socket,
    make_event,
    running,
    scripted,
    verifier,
)

MakeReceiver = Callable[..., Awaitable[Receiver]]
PATH_SECRET = "T0/B0/path-secret"
"""A webhook URL's path can be its credential (Slack's is): never logged."""
FAST = Schedule((0.0, 0.1, 0.1, 0.1, 0.1, 0.1), jitter=0.0)


def hook(name: str, url: str, *, timeout: float = 2.0, **limits: object) -> WebhookSink:
    chosen = Limits(**{"schedule": FAST, "breaker_failures": 50, **limits})  # type: ignore[arg-type]
    return WebhookSink(
        name, url=url, secrets=[SECRET], limits=chosen, timeout=timeout, allow_private=True
    )


async def rows_of(store: SqliteStore) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entry in await store.entries(state=None, sink=None, limit=1000):
        found.setdefault(entry.state, []).append(entry.event_id)
    return found


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 30.0) -> None:
    try:
        async with asyncio.timeout(within):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"gave up waiting: {what}") from None


def sample(dispatcher: Dispatcher, name: str, **labels: str) -> float | None:
    return dispatcher.metrics.registry.get_sample_value(name, labels)


async def test_500_three_times_then_200_keeps_the_id_and_follows_the_schedule(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    ok = scripted(500, 500, 500)
    server = await endpoint(verifier(SECRET, then=ok))
    schedule = Schedule((0.0, 0.2, 0.3, 0.4), jitter=0.1)
    event = make_event(1, 1)
    sink = hook("hook", server.url, schedule=schedule)
    async with running(tmp_path / "s.db", [sink], events=[event]) as (dispatcher, store):
        await server.until(lambda r: len(r.hits) == 4, what="4 attempts")
        await until(lambda: _delivered(store, 1), "delivered")
        entry = (await store.entries(state="delivered", sink="hook", limit=1))[0]
    assert server.ids() == [event.id] * 4
    gaps = [b.at - a.at for a, b in zip(server.hits, server.hits[1:], strict=False)]
    assert [gap >= step * 0.9 for gap, step in zip(gaps, schedule.steps[1:], strict=True)] == [
        True
    ] * 3
    assert entry.attempts == 4
    assert sample(dispatcher, "spmon_notifications_total", sink="hook", outcome="failed") == 3
    assert sample(dispatcher, "spmon_notifications_total", sink="hook", outcome="delivered") == 1
    assert sample(dispatcher, "spmon_notification_latency_seconds_count", sink="hook") == 1


async def _delivered(store: SqliteStore, count: int) -> bool:
    return len((await rows_of(store)).get("delivered", [])) >= count


async def test_a_4xx_is_dead_at_once_with_its_reason(
    endpoint: MakeReceiver, tmp_path: Path, log_events: list[EventDict]
) -> None:
    server = await endpoint(scripted(422))
    event = make_event(1, 1)
    sink = hook("hook", f"{server.url}/{PATH_SECRET}")
    async with running(tmp_path / "s.db", [sink], events=[event]) as (dispatcher, store):
        await until(lambda: _state_count(store, "dead", 1), "dead letter")
        (entry,) = await store.entries(state="dead", sink="hook", limit=5)
    assert entry.last_error == "HTTP 422"
    assert len(server.hits) == 1
    assert sample(dispatcher, "spmon_notifications_total", sink="hook", outcome="dead") == 1
    (dead,) = named(log_events, "delivery.dead_lettered")
    assert dead["log_level"] == "error"
    assert (dead["sink"], dead["event_id"], dead["reason"]) == ("hook", event.id, "HTTP 422")
    assert dead["session_sid"] == event.key.session_sid
    assert "spmon outbox retry --sink hook" in dead["hint"]
    assert_no_secrets(log_events, SECRET, SECRET.removeprefix("whsec_"), PATH_SECRET)


async def _state_count(store: SqliteStore, state: str, count: int) -> bool:
    return len((await rows_of(store)).get(state, [])) >= count


async def test_a_spent_schedule_dead_letters_with_the_last_reason(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    server = await endpoint(scripted(*[500] * 10))
    sink = hook("hook", server.url, schedule=Schedule((0.0, 0.05, 0.05), jitter=0.0))
    async with running(tmp_path / "s.db", [sink], events=[make_event(1, 1)]) as (_, store):
        await until(lambda: _state_count(store, "dead", 1), "dead letter")
        (entry,) = await store.entries(state="dead", sink="hook", limit=5)
    assert entry.last_error == "retries exhausted; last: HTTP 500"
    assert len(server.hits) == 3


async def test_retry_after_holds_back_the_whole_sink_and_no_other(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    throttled = await endpoint(scripted(429, headers={"Retry-After": "7"}))
    steady = await endpoint()
    events = [make_event(n, 1) for n in range(1, 4)]
    sinks = [hook("throttled", throttled.url, concurrency=1), hook("steady", steady.url)]
    async with running(tmp_path / "s.db", sinks, events=events) as (_, store):
        await steady.until(lambda r: len(r.hits) == 3, what="steady sink got all")
        await until(lambda: _errored(store, "throttled"), "429 recorded")
        started = time.time()
        await asyncio.sleep(0.5)
        pending = await store.entries(state="pending", sink="throttled", limit=10)
    assert len(throttled.hits) == 1  # nothing else was sent during the pause
    assert len(pending) == 3
    first = next(e for e in pending if e.last_error)
    assert first.last_error == "HTTP 429"
    assert first.next_attempt_at >= started + 6.0


async def _errored(store: SqliteStore, sink: str) -> bool:
    return any(e.last_error for e in await store.entries(state="pending", sink=sink, limit=10))


async def test_a_sessions_alerts_keep_their_order_while_one_retries(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    failed_once: set[str] = set()

    async def first_attempt_fails(hit: Hit) -> web.StreamResponse:
        event_id = hit.headers["webhook-id"]
        if event_id not in failed_once:
            failed_once.add(event_id)
            return web.Response(status=503)
        return web.Response(status=204)

    server = await endpoint(first_attempt_fails)
    events = [make_event(session, step) for step in range(1, 4) for session in (1, 2)]
    async with running(
        tmp_path / "s.db", [hook("hook", server.url, concurrency=4)], events=events
    ) as (_, store):
        await until(lambda: _delivered(store, 6), "all delivered")
    for session in (1, 2):
        ours = [e.id for e in events if e.key and e.key.session_sid.endswith(f"{session:032x}")]
        seen = [i for i in server.ids() if i in ours]
        # Each event: a failed attempt, then the success, before the next one is tried.
        assert seen == [i for i in ours for _ in range(2)]


async def test_a_hanging_sink_does_not_delay_another(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    hanging = await endpoint(Hit.hang)
    steady = await endpoint()
    events = [make_event(n, 1) for n in range(1, 11)]
    sinks = [hook("hanging", hanging.url, timeout=30.0), hook("steady", steady.url)]
    async with running(tmp_path / "s.db", sinks, events=events) as (_, store):
        await steady.until(lambda r: len(r.hits) == 10, what="steady sink got all 10")
        await until(lambda: _delivered(store, 10), "steady sink's rows marked delivered")
        await hanging.until(lambda r: len(r.hits) >= 1, what="hanging sink was tried")
        assert sorted(steady.ids()) == sorted(e.id for e in events)
        assert len((await rows_of(store))["pending"]) == 10  # all of the hanging sink's
    # Leaving cancelled the hung deliveries and released their leases: nothing is lost.
    async with SqliteStore(tmp_path / "s.db") as store:
        pending = await store.entries(state="pending", sink="hanging", limit=100)
    assert len(pending) == 10


async def test_the_breaker_waits_out_an_outage_and_sends_the_backlog_on_recovery(
    tmp_path: Path, log_events: list[EventDict]
) -> None:
    sock = bound_socket()
    host, port = sock.getsockname()
    # An hour between retries: only the breaker's probe can bring the rows back this soon.
    schedule = Schedule((0.0, 3600.0, 3600.0), jitter=0.0)
    sink = hook(
        "flaky",
        f"http://{host}:{port}/{PATH_SECRET}",
        schedule=schedule,
        concurrency=2,
        breaker_failures=3,
        breaker_cooldown=0.2,
    )
    events = [make_event(n, 1) for n in range(1, 9)]
    server = Receiver()
    try:
        async with running(tmp_path / "s.db", [sink], events=events) as (dispatcher, store):
            await until(lambda: _breaker_open(dispatcher), "breaker open")
            await asyncio.sleep(0.5)  # a few probes fail meanwhile; none burns a retry
            entries = await store.entries(state="pending", sink="flaky", limit=100)
            assert max(e.attempts for e in entries) <= 1
            await server.start(sock)
            await server.until(lambda r: len(set(r.ids())) == 8, what="backlog delivered")
            await until(lambda: _delivered(store, 8), "all marked delivered")
    finally:
        await server.stop()
        sock.close()
    assert sorted(set(server.ids())) == sorted(e.id for e in events)
    (down,) = named(log_events, "sink.down")
    assert down["log_level"] == "error"
    assert (down["sink"], down["host"], down["failures"]) == ("flaky", host, 3)
    assert down["reason"]  # what the failing attempts said (here: connection refused)
    assert named(log_events, "sink.recovered")[0]["sink"] == "flaky"
    assert_no_secrets(log_events, SECRET, SECRET.removeprefix("whsec_"), PATH_SECRET)


async def _breaker_open(dispatcher: Dispatcher) -> bool:
    return statuses(dispatcher.lanes, dispatcher.clock.now()) == {"flaky": "down"}


async def test_410_disables_the_sink_until_its_configuration_changes(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    server = await endpoint(scripted(410))
    events = [make_event(n, 1) for n in range(1, 4)]
    path = tmp_path / "s.db"

    def sink(fingerprint: str) -> WebhookSink:
        chosen = Limits(schedule=FAST, concurrency=1)
        return WebhookSink(
            "gone", url=server.url, limits=chosen, fingerprint=fingerprint, allow_private=True
        )

    async with running(path, [sink("config-1")], events=events) as (dispatcher, store):
        await until(lambda: _state_count(store, "dead", 1), "410 dead-lettered")
        await asyncio.sleep(0.3)
        assert sample(dispatcher, "spmon_sink_disabled", sink="gone") == 1
        assert len(server.hits) == 1
        states = await store.sink_states()
    assert states["gone"].reason == "HTTP 410: the receiver is gone"

    async with running(path, [sink("config-1")]) as (dispatcher, store):
        await asyncio.sleep(0.3)
        assert sample(dispatcher, "spmon_sink_disabled", sink="gone") == 1
        assert len(server.hits) == 1  # same configuration: still disabled after a restart

    async with running(path, [sink("config-2")]) as (dispatcher, store):
        await until(lambda: _delivered(store, 2), "pending rows delivered")
        assert sample(dispatcher, "spmon_sink_disabled", sink="gone") == 0
        assert await store.requeue_dead(sink="gone", now=time.time()) == 1
        dispatcher.notify()
        await until(lambda: _delivered(store, 3), "re-queued dead row delivered")
    assert Counter(server.ids()) == Counter({events[0].id: 2, events[1].id: 1, events[2].id: 1})


async def test_drain_delivers_what_is_due_without_a_running_loop(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    server = await endpoint()
    events = [make_event(n, 1) for n in range(1, 6)]
    sink = hook("hook", server.url)
    async with SqliteStore(tmp_path / "s.db") as store:
        await store.enqueue([(e, ["hook"]) for e in events], time.time())
        metrics = Metrics(CollectorRegistry(), sinks=["hook"])
        await Dispatcher(store=store, sinks=[sink], metrics=metrics).drain(10.0)
        await sink.aclose()
        assert len((await rows_of(store))["delivered"]) == 5
    assert sorted(server.ids()) == sorted(e.id for e in events)


def overdue(session: int, step: int, kind: EventType = EventType.REVIEW_OVERDUE) -> Event:
    return make_event(session, step, kind=kind)


async def test_firing_alerts_are_resent_from_the_outbox_also_after_a_restart(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    am = await endpoint(scripted())
    path = tmp_path / "s.db"
    events = [
        overdue(1, 1),
        overdue(2, 1),
        overdue(2, 2, EventType.REVIEW_OVERDUE_RESOLVED),
        make_event(3, 1),  # not an alert type: never posted as an alert
    ]

    def sink() -> AlertmanagerSink:
        return AlertmanagerSink(
            "am",
            url=am.url,
            resend_interval=0.2,
            limits=Limits(1, schedule=FAST),
            allow_private=True,
        )

    async with running(path, [sink()], events=events) as (_, store):
        await until(lambda: _delivered(store, 4), "all delivered")
        delivered = [hit.json() for hit in am.hits]
        am.hits.clear()
        await am.until(lambda r: len(r.hits) >= 2, what="two resends")
    assert all(hit.path == "/api/v2/alerts" for hit in am.hits)
    resent = {alert["labels"]["session"] for hit in am.hits for alert in hit.json()}  # type: ignore[attr-defined]
    assert resent == {events[0].key.session_sid}  # type: ignore[union-attr]
    assert len(delivered) >= 3  # one post per alert event (plus resends that raced them)
    am.hits.clear()
    async with running(path, [sink()]) as _:
        await am.until(lambda r: len(r.hits) >= 1, what="resend right after the restart")
    (alert,) = am.hits[0].json()  # type: ignore[misc]
    assert alert["labels"]["session"] == events[0].key.session_sid  # type: ignore[union-attr]
    assert alert["endsAt"] > alert["startsAt"]

    am.hits.clear()
    options = {"watched": lambda sid: False}
    async with running(path, [sink()], dispatcher_options=options) as _:
        await asyncio.sleep(0.7)  # three resend intervals
    # A session no longer watched gets its alert ended once, not left active for the hold.
    (post,) = [hit.json() for hit in am.hits]
    (ended,) = post  # type: ignore[misc]
    assert ended["labels"]["session"] == events[0].key.session_sid  # type: ignore[union-attr]
    assert datetime.fromisoformat(ended["endsAt"]) <= datetime.now(UTC)
    assert ended["annotations"]["summary"].startswith("Exam review resolved")


async def test_a_firing_alert_outlives_a_stop_of_up_to_the_hold(
    endpoint: MakeReceiver, tmp_path: Path
) -> None:
    """The old endsAt (now + 4 × resend_interval) resolved every alert a few minutes into a
    stopped spmon; now a firing post is valid for the hold plus one resend interval."""
    am = await endpoint(scripted())
    sink = AlertmanagerSink(
        "am",
        url=am.url,
        resend_interval=2.0,
        hold=600.0,
        limits=Limits(1, schedule=FAST),
        allow_private=True,
    )
    before = datetime.now(UTC)
    async with running(tmp_path / "s.db", [sink], events=[overdue(1, 1)]):
        await am.until(lambda r: len(r.hits) >= 1, what="the alert")
    (alert,) = am.hits[0].json()  # type: ignore[misc]
    valid = datetime.fromisoformat(alert["endsAt"]) - before
    assert timedelta(seconds=602) <= valid <= timedelta(seconds=612)


async def test_alertmanager_down_for_a_while_gets_the_still_firing_alert_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    firing = overdue(1, 1)
    async with SqliteStore(path) as store:  # the alert was delivered before the outage
        await store.enqueue([(firing, ["am"])], time.time())
        (row,) = await store.claim("am", now=time.time(), limit=1, owner="t", lease=60)
        await store.mark_delivered(row.id, owner="t", now=time.time())
    sock = bound_socket()
    host, port = sock.getsockname()
    am = Receiver()
    sink = AlertmanagerSink(
        "am", url=f"http://{host}:{port}", resend_interval=0.5, timeout=1.0, allow_private=True
    )
    try:
        async with running(path, [sink]):
            await asyncio.sleep(1.2)  # a few resends refused meanwhile
            await am.start(sock)
            await am.until(lambda r: len(r.hits) >= 1, what="a resend once it is back")
    finally:
        await am.stop()
        sock.close()
    (alert,) = am.hits[0].json()  # type: ignore[misc]
    assert alert["labels"]["session"] == firing.key.session_sid  # type: ignore[union-attr]
    # Still firing (valid for the hold from the post), not resolved by us.
    assert datetime.fromisoformat(alert["endsAt"]) > datetime.now(UTC)
