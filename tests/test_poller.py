"""The poller with everything real: simulator on loopback, ApiClient, SQLite file, registry."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.api import ApiClient, ClientOptions
from monitor.core import rules
from monitor.core.backoff import Backoff
from monitor.core.events import isoformat
from monitor.metrics import Metrics
from monitor.poller import Entry, Poller, PollerOptions, WatchSet
from monitor.store import Committer, SqliteStore
from tests.clockkit import T0
from tests.clockkit import FakeClock as Clock
from tests.storekit import outbox_rows

PollerFactory = Callable[..., Awaitable[Poller]]


@pytest.fixture
async def make_poller(state_path: Path) -> AsyncIterator[PollerFactory]:
    async with AsyncExitStack() as stack:

        async def create(
            url: str,
            keys,
            *,
            clock: Clock,
            policy: rules.Policy | None = None,
            path: Path = state_path,
        ) -> Poller:
            store = await stack.enter_async_context(SqliteStore(path))
            registry = CollectorRegistry()
            metrics = Metrics(registry, sinks=["hook"])
            options = ClientOptions(
                base_url=url, token=None, rate_limit=1000, backoff=Backoff(0.01, 0.02, 0)
            )
            api = await stack.enter_async_context(ApiClient(options, clock=clock))
            watchset = WatchSet(clock=clock)
            committer = await stack.enter_async_context(Committer(store))
            poller = Poller(
                api=api, store=store, watchset=watchset, committer=committer, metrics=metrics,
                router=lambda _e: ["hook"],
                options=PollerOptions(
                    policy=policy or rules.Policy(overdue_repeat=None),
                    deployment=store.deployment_id,
                ),
                clock=clock, rng=random.Random(3),
            )  # fmt: skip
            metrics.watch_set(watchset)
            await poller.restore([(k, {"course": "BIO101"}, 60.0) for k in keys])
            return poller

        yield create


async def outbox(poller: Poller) -> list[dict]:
    rows = await outbox_rows(poller.store, state=None, limit=1000)
    return [json.loads(r.payload) for r in rows]


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


async def test_first_sighting_is_a_baseline(simulator, make_poller) -> None:
    sim = await simulator(3)
    poller = await make_poller(sim.url, sim.keys, clock=Clock())
    await poller.poll_all()
    assert await outbox(poller) == []
    assert all(e.snapshot is not None for e in poller.watchset.entries.values())
    assert poller.metrics.registry.get_sample_value("spmon_polls_total", {"outcome": "ok"}) == 3


async def test_changes_become_events_with_labels(simulator, make_poller) -> None:
    sim = await simulator(2)
    key = sim.keys[0]
    sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewByDate=None)
    poller = await make_poller(sim.url, sim.keys, clock=Clock())
    await poller.poll_all()
    deadline = isoformat(T0 + timedelta(days=2))
    sim.sim.set(key, status="Closed", reviewRequired=True, reviewByDate=deadline, reviewed=False)
    await poller.poll_all()
    events = await outbox(poller)
    assert sorted(types(events)) == [
        "session.review_by_date_changed",
        "session.review_required_changed",
        "session.status_changed",
    ]
    status = next(e for e in events if e["type"] == "session.status_changed")["data"]
    assert (status["previous"], status["current"]) == ("Scheduled", "Closed")
    assert status["session"]["labels"] == {"course": "BIO101"}
    assert status["session"]["session_sid"] == key.session_sid
    reg = poller.metrics.registry
    assert reg.get_sample_value("spmon_session_changes_total", {"field": "status"}) == 1


async def test_a_date_spelled_differently_is_not_a_change(simulator, make_poller) -> None:
    sim = await simulator(1)
    key = sim.keys[0]
    sim.sim.set(key, reviewByDate="2026-03-05T10:00:00Z")
    poller = await make_poller(sim.url, sim.keys, clock=Clock())
    await poller.poll_all()
    sim.sim.set(key, reviewByDate="2026-03-05T17:00:00+07:00")
    await poller.poll_all()
    assert await outbox(poller) == []


async def test_invalid_body_keeps_the_last_good_snapshot(simulator, make_poller) -> None:
    sim = await simulator(1)
    key = sim.keys[0]
    sim.sim.set(key, status="Scheduled", reviewRequired=False)
    poller = await make_poller(sim.url, sim.keys, clock=Clock())
    await poller.poll_all()
    good = poller.watchset.entries[key].snapshot
    sim.sim.set(key, status="Closed", reviewRequired="yes")
    await poller.poll_all()
    entry = poller.watchset.entries[key]
    assert entry.snapshot == good
    assert entry.failures == 1
    assert await outbox(poller) == []
    assert (
        poller.metrics.registry.get_sample_value("spmon_polls_total", {"outcome": "invalid"}) == 1
    )
    sim.sim.set(key, reviewRequired=False)
    await poller.poll_all()  # the change is detected once the data is good again
    assert types(await outbox(poller)) == ["session.status_changed"]


async def test_overdue_fires_at_the_deadline_once_and_resolves_once(simulator, make_poller) -> None:
    sim = await simulator(1)
    key = sim.keys[0]
    deadline = T0 + timedelta(seconds=20)
    sim.sim.set(
        key, status="Closed", reviewRequired=True, reviewed=False, reviewByDate=isoformat(deadline)
    )
    clock = Clock()
    poller = await make_poller(sim.url, sim.keys, clock=clock)
    await poller.poll_all()
    assert poller.watchset.heap.peek() is not None
    # The wake-up is scheduled just after the deadline, not one poll interval later.
    due = poller.watchset.heap.peek()
    assert deadline.timestamp() < due <= deadline.timestamp() + 1
    clock.set(due)
    await poller.poll_all()
    await poller.poll_all()
    assert types(await outbox(poller)) == ["review.overdue"]
    summary = poller.watchset.summary()
    assert summary.reviews_overdue == 1 and summary.reviews_pending == 1
    sim.sim.set(key, reviewed=True)
    clock.advance(60)
    await poller.poll_all()
    assert types(await outbox(poller)) == ["review.overdue", "review.overdue_resolved"]


async def test_overdue_repeats_on_the_configured_interval(simulator, make_poller) -> None:
    sim = await simulator(1)
    key = sim.keys[0]
    sim.sim.set(
        key, reviewRequired=True, reviewed=False, reviewByDate=isoformat(T0 - timedelta(hours=1))
    )
    clock = Clock()
    policy = rules.Policy(overdue_repeat=timedelta(hours=1))
    poller = await make_poller(sim.url, sim.keys, clock=clock, policy=policy)
    for _ in range(3):
        await poller.poll_all()
        clock.advance(1800)
    ids = [e["data"]["id"] for e in await outbox(poller)]
    assert types(await outbox(poller)) == ["review.overdue", "review.overdue"]
    assert len(set(ids)) == 2


async def test_not_found_is_reported_once(simulator, make_poller) -> None:
    sim = await simulator(1)
    poller = await make_poller(sim.url, sim.keys, clock=Clock())
    await poller.poll_all()
    sim.sim.remove(sim.keys[0])
    await poller.poll_all()
    await poller.poll_all()
    assert types(await outbox(poller)) == ["session.not_found"]
    assert poller.watchset.entries[sim.keys[0]].missing


async def test_auth_failure_is_one_event_not_one_per_session(simulator, make_poller) -> None:
    sim = await simulator(4, token="good")
    poller = await make_poller(sim.url, sim.keys, clock=Clock())
    await poller.poll_all()
    assert types(await outbox(poller)) == ["api.auth_failed"]
    assert poller.metrics.registry.get_sample_value("spmon_api_auth_failing") == 1


async def test_restart_resumes_without_rebaselining(simulator, make_poller, tmp_path: Path) -> None:
    sim = await simulator(2)
    key = sim.keys[0]
    sim.sim.set(key, status="Scheduled")
    first = await make_poller(sim.url, sim.keys, clock=Clock(), path=tmp_path / "a.db")
    await first.poll_all()
    await first.store.__aexit__(None, None, None)
    sim.sim.set(key, status="Incident")
    second = await make_poller(sim.url, sim.keys, clock=Clock(), path=tmp_path / "a.db")
    entry: Entry = second.watchset.entries[key]
    assert entry.snapshot is not None and entry.snapshot.status == "Scheduled"
    await second.poll_all()
    assert types(await outbox(second)) == ["session.status_changed"]


def _without_status(sim, key) -> bytes:
    document = sim.payload(key)
    del document["status"]
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "bad",
    [
        lambda sim, key: b"{}",
        lambda sim, key: b'{"message": "upstream request timeout"}',
        _without_status,
    ],
    ids=["empty-object", "gateway-message", "no-status"],
)
async def test_a_200_that_is_not_a_session_never_touches_alert_state(
    simulator, make_poller, bad
) -> None:
    """Issue 7.1: between good polls of an overdue session, a 200 carrying no session is
    invalid: no change events, no false overdue_resolved, no second overdue, snapshot kept."""
    sim = await simulator(1)
    key = sim.keys[0]
    late = isoformat(T0 - timedelta(hours=2))
    sim.sim.set(key, status="Closed", reviewRequired=True, reviewed=False, reviewByDate=late)
    clock = Clock()
    poller = await make_poller(sim.url, sim.keys, clock=clock)
    await poller.poll_all()
    assert types(await outbox(poller)) == ["review.overdue"]
    entry = poller.watchset.entries[key]
    good, review = entry.snapshot, entry.review
    sim.sim.set_body(key, bad(sim.sim, key))
    for _ in range(3):
        clock.advance(60)
        await poller.poll_all()
        assert (entry.snapshot, entry.review) == (good, review)
        (stored,) = await poller.store.load()
        assert (stored.snapshot, stored.review) == (good, review)
    sim.sim.set_body(key, None)
    clock.advance(60)
    await poller.poll_all()
    assert types(await outbox(poller)) == ["review.overdue"]
    assert entry.failures == 0 and entry.snapshot == good
    reg = poller.metrics.registry
    assert reg.get_sample_value("spmon_polls_total", {"outcome": "invalid"}) == 3
    assert reg.get_sample_value("spmon_polls_total", {"outcome": "ok"}) == 2
    assert poller.watchset.summary().reviews_overdue == 1


async def test_drift_in_an_unread_field_does_not_hide_a_change_to_incident(
    simulator, make_poller
) -> None:
    """Issue 7.2: `"duration": "90"` (a string) is kept as it comes; the session stays visible."""
    sim = await simulator(1)
    key = sim.keys[0]
    sim.sim.set(key, status="Scheduled", duration="90", sessionReportCount="n/a")
    poller = await make_poller(sim.url, sim.keys, clock=Clock())
    await poller.poll_all()
    sim.sim.set(key, status="Incident")
    await poller.poll_all()
    events = await outbox(poller)
    assert types(events) == ["session.status_changed"]
    assert (events[0]["data"]["previous"], events[0]["data"]["current"]) == (
        "Scheduled",
        "Incident",
    )
    assert (
        poller.metrics.registry.get_sample_value("spmon_polls_total", {"outcome": "invalid"}) == 0
    )
