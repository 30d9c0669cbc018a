"""review.escalated: one event per level per review, on time (the next check is the level's
instant, so the poller wakes for it), with ids that survive a retry, and never after the
review resolved."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from monitor import wiring
from monitor.core import observe, rules
from monitor.core.events import Event, EventType
from monitor.core.snapshot import Snapshot
from monitor.settings import load_settings
from tests.clockkit import FakeClock
from tests.sinks.sinkkit import make_key

D = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
PENDING = Snapshot("Closed", review_required=True, reviewed=False, review_by_date=D)
DONE = replace(PENDING, reviewed=True)
POLICY = rules.Policy(overdue_repeat=None, escalate=(4 * H, 8 * H))
KEY = make_key(1)


def _observe(
    snap: Snapshot, review: rules.ReviewState, version: int, at: datetime
) -> observe.Observation:
    return observe.observe(
        KEY, PENDING, snap, review=review, version=version, now=at, policy=POLICY,
        labels={"course": "BIO101"}, deployment="test",
    )  # fmt: skip


def _run(times: list[datetime], resolve_at: datetime | None = None) -> list[Event]:
    """Observe at each time (a poll), as the poller would; events in order."""
    review, version, seen = rules.ReviewState(), 0, []
    for at in times:
        snap = DONE if resolve_at is not None and at >= resolve_at else PENDING
        found = _observe(snap, review, version, at)
        review, version = found.review, found.version
        seen += found.events
    return seen


def test_levels_fire_on_time_driven_by_next_check() -> None:
    clock = FakeClock(D + timedelta(minutes=1))
    review, version, fired = rules.ReviewState(), 0, []
    for _ in range(6):
        at = datetime.fromtimestamp(clock.now(), UTC)
        found = _observe(PENDING, review, version, at)
        review, version = found.review, found.version
        fired += [(e.type, e.level, at) for e in found.events]
        wake = rules.next_check(PENDING, review, at, POLICY)
        if wake is None:
            break
        clock.set(wake.timestamp())  # the poller's deadline wake-up
    assert fired == [
        (EventType.REVIEW_OVERDUE, None, D + timedelta(minutes=1)),
        (EventType.REVIEW_ESCALATED, 1, D + 4 * H),
        (EventType.REVIEW_ESCALATED, 2, D + 8 * H),
    ]


def test_a_first_sighting_long_overdue_raises_every_level_reached_once() -> None:
    events = _run([D + 9 * H, D + 10 * H, D + 30 * H])
    assert [(e.type, e.level) for e in events] == [
        (EventType.REVIEW_OVERDUE, None),
        (EventType.REVIEW_ESCALATED, 1),
        (EventType.REVIEW_ESCALATED, 2),
    ]


def test_resolved_before_a_level_never_raises_it() -> None:
    times = [D + k * H for k in range(1, 12)]
    events = _run(times, resolve_at=D + 6 * H)
    kinds = [(e.type, e.level) for e in events]
    assert kinds == [
        (EventType.REVIEW_OVERDUE, None),
        (EventType.REVIEW_ESCALATED, 1),
        (EventType.REVIEW_OVERDUE_RESOLVED, None),
    ]


def test_the_same_poll_again_gives_the_same_ids() -> None:
    first = _observe(PENDING, rules.ReviewState(), 3, D + 5 * H)
    again = _observe(PENDING, rules.ReviewState(), 3, D + 5 * H)
    assert [e.id for e in first.events] == [e.id for e in again.events]
    assert len({e.id for e in first.events}) == len(first.events)
    wire = Event.from_wire(first.events[-1].to_wire())
    assert wire.level == 1 and wire.type is EventType.REVIEW_ESCALATED


@given(polls=st.lists(st.floats(0, 40), min_size=1, max_size=30), resolve=st.floats(0, 40))
def test_once_per_level_and_never_after_resolve(polls: list[float], resolve: float) -> None:
    times = sorted(D + timedelta(hours=h) for h in polls)
    resolved = D + timedelta(hours=resolve)
    events = _run(times, resolve_at=resolved)
    levels = [e.level for e in events if e.type is EventType.REVIEW_ESCALATED]
    assert levels == sorted(set(levels))  # each level once, in order
    for e in events:
        if e.type is EventType.REVIEW_ESCALATED:
            assert e.observed_at < resolved
            assert e.observed_at >= D + POLICY.escalate[(e.level or 1) - 1]


def test_escalations_route_to_their_target_only(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "api: {base_url: 'http://127.0.0.1:9', token: t}\n"
        "sinks:\n"
        "- {name: slack, type: slack, url: 'https://hooks.slack.com/services/T/B/x',\n"
        "   match_labels: {course: BIO*}, escalate: [{after: 4h, to: pager}, {after: 8h, to: mail}]}\n"
        "- {name: pager, type: log, events: ['session.*']}\n"
        "- {name: mail, type: log, events: ['session.*']}\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    route = wiring.router(settings)
    assert wiring.policy(settings).escalate == (4 * H, 8 * H)
    (event,) = [e for e in _observe(PENDING, rules.ReviewState(), 0, D + 5 * H).events if e.level]
    assert route(event) == ("pager",)
    assert route(replace(event, level=2)) == ("mail",)
    assert route(replace(event, labels={"course": "CHEM1"})) == ()  # slack would not take it
