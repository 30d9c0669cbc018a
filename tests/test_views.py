"""The read model over a real poller: simulator on loopback, SQLite file, FakeClock for spmon.

History holds every transition the poller observed, routed or not, with each delivery per
sink; the summary never calls sessions it has not seen good news; a state file alone reads
the same sessions with the runtime parts unknown."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor import views
from monitor.core.events import EventType, isoformat
from monitor.core.outbox import OutboxState
from monitor.core.phase import Phase
from monitor.core.views import UNKNOWN, SessionQuery, Sort
from tests.clockkit import T0
from tests.clockkit import FakeClock as Clock
from tests.servicekit import clock, make_service, simulator

__all__ = ["clock", "make_service", "simulator"]  # fixtures, re-exported for pytest


async def test_history_holds_every_transition_and_each_delivery(
    simulator, make_service, clock: Clock
) -> None:
    sim = await simulator(2)
    key = sim.keys[0]
    deadline = T0 + timedelta(seconds=20)
    sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    sim.sim.set(key, status="Closed", reviewRequired=True, reviewByDate=isoformat(deadline))
    clock.advance(30)
    await svc.poller.poll_all()
    history = await svc.views.history(key.session_sid)
    assert history is not None and history.session is not None
    kinds = [t.type for t in history.transitions]
    assert EventType.STATUS_CHANGED in kinds and EventType.REVIEW_OVERDUE in kinds
    status = next(t for t in history.transitions if t.type is EventType.STATUS_CHANGED)
    assert (status.field, status.previous, status.current) == ("status", "Scheduled", "Closed")
    moved = next(t for t in history.transitions if t.type is EventType.REVIEW_BY_DATE_CHANGED)
    assert moved.current == deadline  # an instant again, not a string
    assert history.deliveries_of(status.event_id) == ()  # no sink takes it: still history
    overdue = next(t for t in history.transitions if t.type is EventType.REVIEW_OVERDUE)
    (delivery,) = history.deliveries_of(overdue.event_id)
    assert (delivery.sink, delivery.state, delivery.attempts) == ("alerts", OutboxState.PENDING, 0)
    await svc.dispatcher.drain(deadline=5)
    history = await svc.views.history(key.session_sid)
    assert history is not None
    (delivery,) = history.deliveries_of(overdue.event_id)
    assert delivery.state is OutboxState.DELIVERED and delivery.delivered_at is not None
    assert history.session is not None and history.session.overdue is True
    assert history.session.lateness == pytest.approx(10.0)


async def test_sessions_and_summary_follow_the_alert_rule(
    simulator, make_service, clock: Clock
) -> None:
    sim = await simulator(3)
    late, soon, calm = sim.keys
    # Status and appointment pinned: the simulator's own would make a session live.
    sim.sim.set(late, status="Closed", reviewRequired=True, reviewed=False, appointmentDate=None,
                reviewByDate=isoformat(T0 - timedelta(hours=2)))  # fmt: skip
    sim.sim.set(soon, status="Closed", reviewRequired=True, reviewed=False, appointmentDate=None,
                reviewByDate=isoformat(T0 + timedelta(hours=3)))  # fmt: skip
    sim.sim.set(calm, status="Closed", reviewRequired=False, reviewed=False, reviewByDate=None)
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    page = await svc.views.sessions(SessionQuery(overdue=True))
    assert [v.key for v in page.items] == [late] and page.total == 1
    assert page.items[0].labels == {"course": "BIO101"}
    assert page.items[0].phase is Phase.AWAITING_REVIEW
    due = await svc.views.sessions(SessionQuery(due_within=86400, sort=Sort.DEADLINE))
    assert [v.key for v in due.items] == [soon]
    summary = await svc.views.summary()
    assert summary.running and summary.overdue_known
    assert (summary.watched, summary.overdue, summary.due_soon) == (3, 1, 1)
    assert summary.oldest_overdue == pytest.approx(7200.0)
    assert summary.api.auth_failing is False and summary.api.last_success is not None
    assert [(s.name, s.state) for s in summary.sinks] == [("alerts", "up")]
    assert sum(summary.by_phase.values()) == 3  # type: ignore[union-attr]


async def test_sessions_not_seen_are_unknown_not_good_news(simulator, make_service) -> None:
    sim = await simulator(2)
    for key in sim.keys:
        sim.sim.set(key, reviewRequired=True, reviewed=False,
                    reviewByDate=isoformat(T0 - timedelta(hours=1)))  # fmt: skip
    svc = await make_service(sim.url, sim.keys)
    summary = await svc.views.summary()  # nothing polled yet
    assert summary.unseen == 2 and not summary.overdue_known
    assert (await svc.views.sessions(SessionQuery(overdue=False))).total == 0
    view = await svc.views.session(sim.keys[0].session_sid)
    assert view is not None and not view.seen and view.overdue is None


async def test_the_lists_are_built_once_per_moment_and_again_after_a_write(
    simulator, make_service, clock: Clock
) -> None:
    """Every session's view is built once for the page, its lists and the API's lists while
    nothing is written, at most `KEEP`, then let go of; a poll's write shows at once."""
    sim = await simulator(2)
    svc = await make_service(sim.url, sim.keys)
    before = await svc.views.summary()
    clock.advance(views.KEEP.total_seconds() / 2)
    again = await svc.views.summary()
    assert again.unseen == before.unseen == 2 and again.at == before.at  # the same build
    clock.advance(views.KEEP.total_seconds())
    assert svc.views._built is None  # not held between requests
    await svc.poller.poll_all()
    after = await svc.views.summary()
    assert after.unseen == 0 and after.at > before.at
    assert (await svc.views.sessions(SessionQuery())).items[0].seen is True
    await svc.poller.poll_all()  # nothing changed: nothing written, the build answers again
    assert (await svc.views.summary()).at == after.at


async def test_a_state_file_alone_reads_the_same_with_the_runtime_unknown(
    simulator, make_service, state_path: Path, clock: Clock
) -> None:
    sim = await simulator(2)
    key = sim.keys[0]
    sim.sim.set(key, reviewRequired=True, reviewed=False,
                reviewByDate=isoformat(T0 - timedelta(hours=1)))  # fmt: skip
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    # The service still holds the state file's lock: the offline reader needs none.
    async with views.offline(state_path, clock=clock, sinks=["alerts"]) as model:
        assert not model.running
        summary = await model.summary()
        (only,) = (await model.sessions(SessionQuery(overdue=True))).items
        history = await model.history(key.session_sid)
    assert only.key == key and only.phase is None
    assert summary.overdue == 1 and summary.by_phase is None
    assert summary.api.auth_failing is None and summary.api.last_success is None
    assert [(s.name, s.state, s.pending) for s in summary.sinks] == [("alerts", UNKNOWN, 1)]
    assert history is not None and [t.type for t in history.transitions] == [
        EventType.REVIEW_OVERDUE
    ]


async def test_an_overview_is_the_summary_and_each_page_from_one_read(
    simulator, make_service
) -> None:
    sim = await simulator(3)
    late, soon, _ = sim.keys
    sim.sim.set(late, reviewRequired=True, reviewed=False,
                reviewByDate=isoformat(T0 - timedelta(hours=2)))  # fmt: skip
    sim.sim.set(soon, reviewRequired=True, reviewed=False,
                reviewByDate=isoformat(T0 + timedelta(hours=3)))  # fmt: skip
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    queries = [SessionQuery(overdue=True), SessionQuery(due_within=86400, sort=Sort.DEADLINE)]
    summary, pages = await svc.views.overview(queries)
    assert summary == await svc.views.summary()
    assert pages == [await svc.views.sessions(query) for query in queries]
    assert [[v.key for v in page.items] for page in pages] == [[late], [soon]]
