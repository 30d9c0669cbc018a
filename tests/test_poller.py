"""The poller as `service.build` wires it from real Settings: simulator on loopback, ApiClient,
SQLite file, registry. spmon's clock is a FakeClock handed to `service.build`, standing at T0
and moved only by the test; the simulator keeps the wall clock, as a real API would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.typing import EventDict

from monitor import service
from monitor.core.events import isoformat
from monitor.core.keys import SessionKey
from monitor.poller import Entry
from monitor.settings import Settings
from tests.clockkit import T0
from tests.clockkit import FakeClock as Clock
from tests.conftest import assert_no_secrets, named, watches_of
from tests.servicekit import TOKEN, clock, simulator
from tests.storekit import outbox_rows

ServiceFactory = Callable[..., Awaitable[service.Service]]


__all__ = ["clock", "simulator"]  # fixtures (a FakeClock; the simulator taking TOKEN)


def settings_for(
    url: str, keys: Sequence[SessionKey], path: Path, *, overdue_repeat: str = "0s"
) -> Settings:
    return Settings(
        api={"base_url": url, "token": TOKEN, "rate_limit": 1000, "retries": 0},
        poll={"interval": 60},
        rules={"overdue_repeat": overdue_repeat},
        state={"path": path},
        http={"listen": ""},
        watches=watches_of(list(keys), course="BIO101"),
    )


@pytest.fixture
async def make_service(state_path: Path, clock: Clock) -> AsyncIterator[ServiceFactory]:
    """`await make_service(url, keys)` → a service built by `service.build` (no loop runs:
    tests poll with `poll_all`), closed at teardown."""
    async with AsyncExitStack() as stack:

        async def create(
            url: str, keys: Sequence[SessionKey], *, overdue_repeat: str = "0s"
        ) -> service.Service:
            settings = settings_for(url, keys, state_path, overdue_repeat=overdue_repeat)
            return await stack.enter_async_context(
                service.build(settings, serve_http=False, clock=clock)
            )

        yield create


async def outbox(svc: service.Service) -> list[dict]:
    rows = await outbox_rows(svc.store, state=None, limit=1000)
    return [json.loads(r.payload) for r in rows]


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


async def test_first_sighting_is_a_baseline(simulator, make_service) -> None:
    sim = await simulator(3)
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    assert await outbox(svc) == []
    assert all(e.snapshot is not None for e in svc.watchset.entries.values())
    assert svc.registry.get_sample_value("spmon_polls_total", {"outcome": "ok"}) == 3


async def test_changes_become_events_with_labels(simulator, make_service) -> None:
    sim = await simulator(2)
    key = sim.keys[0]
    sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewByDate=None)
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    deadline = isoformat(T0 + timedelta(days=2))
    sim.sim.set(key, status="Closed", reviewRequired=True, reviewByDate=deadline, reviewed=False)
    await svc.poller.poll_all()
    events = await outbox(svc)
    assert sorted(types(events)) == [
        "session.review_by_date_changed",
        "session.review_required_changed",
        "session.status_changed",
    ]
    status = next(e for e in events if e["type"] == "session.status_changed")["data"]
    assert (status["previous"], status["current"]) == ("Scheduled", "Closed")
    assert status["session"]["labels"] == {"course": "BIO101"}
    assert status["session"]["session_sid"] == key.session_sid
    reg = svc.registry
    assert reg.get_sample_value("spmon_session_changes_total", {"field": "status"}) == 1


async def test_a_date_spelled_differently_is_not_a_change(simulator, make_service) -> None:
    sim = await simulator(1)
    key = sim.keys[0]
    sim.sim.set(key, reviewByDate="2026-03-05T10:00:00Z")
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    sim.sim.set(key, reviewByDate="2026-03-05T17:00:00+07:00")
    await svc.poller.poll_all()
    assert await outbox(svc) == []


async def test_invalid_body_keeps_the_last_good_snapshot(
    simulator, make_service, log_events: list[EventDict]
) -> None:
    sim = await simulator(1)
    key = sim.keys[0]
    sim.sim.set(key, status="Scheduled", reviewRequired=False)
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    good = svc.watchset.entries[key].snapshot
    sim.sim.set(key, status="Closed", reviewRequired="yes")
    await svc.poller.poll_all()
    entry = svc.watchset.entries[key]
    assert entry.snapshot == good
    assert entry.failures == 1
    assert await outbox(svc) == []
    assert svc.registry.get_sample_value("spmon_polls_total", {"outcome": "invalid"}) == 1
    (invalid,) = named(log_events, "poll.invalid_response")
    assert invalid["log_level"] == "warning"
    assert (invalid["install_sid"], invalid["exam_sid"], invalid["session_sid"]) == key
    assert invalid["field"] == "reviewRequired" and "reviewRequired" in invalid["problem"]
    sim.sim.set(key, reviewRequired=False)
    await svc.poller.poll_all()  # the change is detected once the data is good again
    assert types(await outbox(svc)) == ["session.status_changed"]
    assert_no_secrets(log_events, TOKEN)


async def test_overdue_fires_at_the_deadline_once_and_resolves_once(
    simulator, make_service, clock: Clock
) -> None:
    sim = await simulator(1)
    key = sim.keys[0]
    deadline = T0 + timedelta(seconds=20)
    sim.sim.set(
        key, status="Closed", reviewRequired=True, reviewed=False, reviewByDate=isoformat(deadline)
    )
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    assert svc.watchset.heap.peek() is not None
    # The wake-up is scheduled just after the deadline, not one poll interval later.
    due = svc.watchset.heap.peek()
    assert deadline.timestamp() < due <= deadline.timestamp() + 1
    clock.set(due)
    await svc.poller.poll_all()
    await svc.poller.poll_all()
    assert types(await outbox(svc)) == ["review.overdue"]
    summary = svc.watchset.summary()
    assert summary.reviews_overdue == 1 and summary.reviews_pending == 1
    sim.sim.set(key, reviewed=True)
    clock.advance(60)
    await svc.poller.poll_all()
    assert types(await outbox(svc)) == ["review.overdue", "review.overdue_resolved"]


async def test_overdue_repeats_on_the_configured_interval(
    simulator, make_service, clock: Clock
) -> None:
    sim = await simulator(1)
    key = sim.keys[0]
    sim.sim.set(
        key, reviewRequired=True, reviewed=False, reviewByDate=isoformat(T0 - timedelta(hours=1))
    )
    svc = await make_service(sim.url, sim.keys, overdue_repeat="1h")
    for _ in range(3):
        await svc.poller.poll_all()
        clock.advance(1800)
    ids = [e["data"]["id"] for e in await outbox(svc)]
    assert types(await outbox(svc)) == ["review.overdue", "review.overdue"]
    assert len(set(ids)) == 2


async def test_not_found_is_reported_once(simulator, make_service) -> None:
    sim = await simulator(1)
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    sim.sim.remove(sim.keys[0])
    await svc.poller.poll_all()
    await svc.poller.poll_all()
    assert types(await outbox(svc)) == ["session.not_found"]
    assert svc.watchset.entries[sim.keys[0]].missing


async def test_auth_failure_is_one_event_not_one_per_session(
    simulator, make_service, log_events: list[EventDict]
) -> None:
    sim = await simulator(4, token="good")  # spmon's TOKEN is refused
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    assert types(await outbox(svc)) == ["api.auth_failed"]
    assert svc.registry.get_sample_value("spmon_api_auth_failing") == 1
    (failed,) = named(log_events, "api.auth_failed")
    assert failed["log_level"] == "error"
    assert "token expired or was revoked" in failed["hint"]
    assert_no_secrets(log_events, TOKEN)


async def test_restart_resumes_without_rebaselining(
    simulator, clock: Clock, tmp_path: Path
) -> None:
    sim = await simulator(2)
    key = sim.keys[0]
    sim.sim.set(key, status="Scheduled")
    settings = settings_for(sim.url, sim.keys, tmp_path / "a.db")
    async with service.build(settings, serve_http=False, clock=clock) as first:
        await first.poller.poll_all()
    sim.sim.set(key, status="Incident")
    async with service.build(settings, serve_http=False, clock=clock) as second:
        entry: Entry = second.watchset.entries[key]
        assert entry.snapshot is not None and entry.snapshot.status == "Scheduled"
        await second.poller.poll_all()
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
    simulator, make_service, bad, clock: Clock
) -> None:
    """Issue 7.1: between good polls of an overdue session, a 200 carrying no session is
    invalid: no change events, no false overdue_resolved, no second overdue, snapshot kept."""
    sim = await simulator(1)
    key = sim.keys[0]
    late = isoformat(T0 - timedelta(hours=2))
    sim.sim.set(key, status="Closed", reviewRequired=True, reviewed=False, reviewByDate=late)
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    assert types(await outbox(svc)) == ["review.overdue"]
    entry = svc.watchset.entries[key]
    good, review = entry.snapshot, entry.review
    sim.sim.set_body(key, bad(sim.sim, key))
    for _ in range(3):
        clock.advance(60)
        await svc.poller.poll_all()
        assert (entry.snapshot, entry.review) == (good, review)
        (stored,) = await svc.store.load()
        assert (stored.snapshot, stored.review) == (good, review)
    sim.sim.set_body(key, None)
    clock.advance(60)
    await svc.poller.poll_all()
    assert types(await outbox(svc)) == ["review.overdue"]
    assert entry.failures == 0 and entry.snapshot == good
    reg = svc.registry
    assert reg.get_sample_value("spmon_polls_total", {"outcome": "invalid"}) == 3
    assert reg.get_sample_value("spmon_polls_total", {"outcome": "ok"}) == 2
    assert svc.watchset.summary().reviews_overdue == 1


async def test_drift_in_an_unread_field_does_not_hide_a_change_to_incident(
    simulator, make_service
) -> None:
    """Issue 7.2: `"duration": "90"` (a string) is kept as it comes; the session stays visible."""
    sim = await simulator(1)
    key = sim.keys[0]
    sim.sim.set(key, status="Scheduled", duration="90", sessionReportCount="n/a")
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    sim.sim.set(key, status="Incident")
    await svc.poller.poll_all()
    events = await outbox(svc)
    assert types(events) == ["session.status_changed"]
    assert (events[0]["data"]["previous"], events[0]["data"]["current"]) == (
        "Scheduled",
        "Incident",
    )
    assert svc.registry.get_sample_value("spmon_polls_total", {"outcome": "invalid"}) == 0
