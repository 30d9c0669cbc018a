"""observe(): one poll's events with deterministic ids; Event wire form (invariants 2, 3, 4)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import strategies
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.core import rules
from monitor.core.events import (
    CONTEXT_FIELDS,
    Event,
    EventType,
    Field,
    Part,
    event_id,
    isoformat,
    wire_value,
)
from monitor.core.keys import SessionKey
from monitor.core.observe import (
    AUTH_MESSAGE,
    OAUTH_MESSAGE,
    Observation,
    auth_failed,
    not_found,
    observe,
)
from monitor.core.render import text
from monitor.core.snapshot import Snapshot

KEY = SessionKey("AI" + "1a" * 16, "EX" + "2b" * 16, "ES" + "3c" * 16)
OTHER_KEY = SessionKey("AI" + "1a" * 16, "EX" + "2b" * 16, "ES" + "4d" * 16)
D = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
NOW = D - timedelta(hours=6)
POLICY = rules.Policy(overdue_repeat=timedelta(hours=24))
LABELS = {"course": "CHEM101", "team": "proctoring"}
A = Snapshot("Scheduled", True, False, D, "https://app.example/s/1")
B = replace(A, status="Closed")
OVERDUE_NOW = D + timedelta(minutes=90)
DEPLOYMENT = "0f" * 16
OTHER_DEPLOYMENT = "e1" * 16

WIRE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")


def data(event: Event) -> dict[str, Any]:
    """The facts as receivers read them: the wire's `data` without the envelope's own keys."""
    wire = dict(event.to_wire()["data"])
    del wire["id"], wire["session"]
    return wire


def look(
    previous: Snapshot | None,
    current: Snapshot,
    *,
    review: rules.ReviewState = rules.ReviewState(),  # noqa: B008 — a frozen value, safe to share
    version: int = 0,
    now: datetime = NOW,
    key: SessionKey = KEY,
    deployment: str = DEPLOYMENT,
) -> Observation:
    return observe(
        key,
        previous,
        current,
        review=review,
        version=version,
        now=now,
        policy=POLICY,
        labels=LABELS,
        deployment=deployment,
    )


# ── first sighting (invariant 3) ─────────────────────────────────────────────────────────────


def test_first_sighting_is_a_baseline_without_events() -> None:
    seen = look(None, A)
    assert seen == Observation(rules.ReviewState(), 0, ())


def test_first_sighting_already_overdue_reports_overdue() -> None:
    """Overdue is a state, not a change: a session first seen past its deadline is overdue."""
    seen = look(None, A, now=OVERDUE_NOW)
    assert [event.type for event in seen.events] == [EventType.REVIEW_OVERDUE]
    assert seen.version == 1
    assert seen.review.overdue_since == OVERDUE_NOW
    event = seen.events[0]
    assert data(event)["overdue_seconds"] == 90 * 60
    assert data(event)["review_by_date"] == "2024-03-01T12:00:00Z"
    assert "field" not in data(event)
    assert event.snapshot == A
    assert event.change is None


# ── change events ────────────────────────────────────────────────────────────────────────────


def test_status_change_event_carries_field_previous_and_current() -> None:
    seen = look(A, B, version=7)
    assert seen.version == 8
    (event,) = seen.events
    assert event.type is EventType.STATUS_CHANGED
    assert event.key == KEY
    assert event.labels == LABELS
    assert event.observed_at == NOW
    assert event.id == event_id(
        KEY.session_sid, 8, EventType.STATUS_CHANGED, "Scheduled", "Closed", deployment=DEPLOYMENT
    )
    assert data(event) == {
        "field": "status",
        "previous": "Scheduled",
        "current": "Closed",
        "status": "Closed",
        "review_required": True,
        "reviewed": False,
        "review_by_date": "2024-03-01T12:00:00Z",
        "overdue_seconds": 0.0,
        "url": "https://app.example/s/1",
        **dict.fromkeys(CONTEXT_FIELDS),
    }


def test_date_change_is_reported_in_wire_form() -> None:
    moved = replace(A, review_by_date=D + timedelta(days=1))
    (event,) = look(A, moved).events
    assert event.type is EventType.REVIEW_BY_DATE_CHANGED
    assert data(event)["previous"] == "2024-03-01T12:00:00Z"
    assert data(event)["current"] == "2024-03-02T12:00:00Z"
    assert event.change is not None
    assert (event.change.previous, event.change.current) == (D, D + timedelta(days=1))


def test_format_only_date_difference_emits_nothing() -> None:
    same = replace(A, review_by_date=D.astimezone(timezone(timedelta(hours=7))))
    assert look(A, same, version=3) == Observation(rules.ReviewState(), 3, ())


def test_several_changes_in_one_poll_share_a_version_with_distinct_ids() -> None:
    after = Snapshot("Closed", False, False, D + timedelta(days=1))
    seen = look(A, after, version=4)
    assert seen.version == 5
    assert [event.type for event in seen.events] == [
        EventType.STATUS_CHANGED,
        EventType.REVIEW_REQUIRED_CHANGED,
        EventType.REVIEW_BY_DATE_CHANGED,
    ]
    assert len({event.id for event in seen.events}) == 3


def test_change_and_overdue_in_one_poll() -> None:
    seen = look(A, B, now=OVERDUE_NOW, version=1)
    assert [event.type for event in seen.events] == [
        EventType.STATUS_CHANGED,
        EventType.REVIEW_OVERDUE,
    ]
    assert {event.observed_at for event in seen.events} == {OVERDUE_NOW}
    assert len({event.id for event in seen.events}) == 2


def test_resolution_is_an_event() -> None:
    entered = look(A, A, now=OVERDUE_NOW)
    done = replace(A, reviewed=True)
    seen = look(A, done, review=entered.review, version=entered.version, now=OVERDUE_NOW)
    assert [event.type for event in seen.events] == [EventType.REVIEW_OVERDUE_RESOLVED]
    assert seen.review.overdue_since is None
    assert seen.version == entered.version + 1


# ── ids (invariant 2) ────────────────────────────────────────────────────────────────────────


def test_same_inputs_give_the_same_ids() -> None:
    """A transition detected again after a crash (same version) gets the same ids."""
    first = look(A, B, version=2, now=OVERDUE_NOW)
    again = look(A, B, version=2, now=OVERDUE_NOW)
    assert first == again
    assert [event.id for event in first.events] == [event.id for event in again.events]


def test_ids_differ_across_versions() -> None:
    at_two = look(A, B, version=2).events[0]
    at_three = look(A, B, version=3).events[0]
    assert at_two.type == at_three.type
    assert at_two.id != at_three.id


def test_ids_differ_across_sessions() -> None:
    assert look(A, B, key=KEY).events[0].id != look(A, B, key=OTHER_KEY).events[0].id


def test_flapping_status_gets_a_new_id_every_time() -> None:
    """A→B→A→B: four commits, four versions, four distinct ids."""
    review, version, previous = rules.ReviewState(), 0, A
    ids = []
    for step, current in enumerate((B, A, B, A)):
        seen = look(
            previous, current, review=review, version=version, now=NOW + timedelta(minutes=step)
        )
        (event,) = seen.events
        ids.append(event.id)
        review, version, previous = seen.review, seen.version, current
    assert version == 4
    assert len(set(ids)) == 4


def test_event_id_shape() -> None:
    value = event_id(KEY.session_sid, 1, EventType.STATUS_CHANGED, deployment=DEPLOYMENT)
    assert re.fullmatch(r"evt_[0-9a-f]{32}", value)
    assert "." not in value  # Standard Webhooks: ids must not contain "."
    assert value == event_id(KEY.session_sid, 1, "session.status_changed", deployment=DEPLOYMENT)


def test_an_event_id_needs_a_deployment() -> None:
    with pytest.raises(ValueError, match="deployment"):
        event_id(KEY.session_sid, 1, EventType.STATUS_CHANGED, deployment="")


PARTS = st.lists(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)), max_size=5
)


@given(parts=PARTS, deployment=st.text(min_size=1, max_size=32))
def test_the_same_transition_always_gets_the_same_id(parts: list[Part], deployment: str) -> None:
    assert event_id(*parts, deployment=deployment) == event_id(*parts, deployment=deployment)


@given(parts=PARTS, first=st.text(min_size=1), second=st.text(min_size=1))
def test_two_deployments_never_share_an_id(parts: list[Part], first: str, second: str) -> None:
    """The same session, version and type in two state files: two ids (issue 7, point 3)."""
    assume(first != second)
    assert event_id(*parts, deployment=first) != event_id(*parts, deployment=second)


@given(left=PARTS, right=PARTS)
def test_different_identities_get_different_ids(left: list[Part], right: list[Part]) -> None:
    """Parts are encoded, not joined: ("a|b", "c") and ("a", "b|c") are two transitions."""
    assume([(type(v), v) for v in left] != [(type(v), v) for v in right])
    assert event_id(*left, deployment=DEPLOYMENT) != event_id(*right, deployment=DEPLOYMENT)


def test_a_different_transition_at_a_reused_version_gets_a_new_id() -> None:
    """A state file restored from a backup replays versions: A→B and A→C at version 5 differ,
    and so does review.overdue for a new deadline."""
    closed, cancelled = look(A, B, version=4), look(A, replace(A, status="Cancelled"), version=4)
    assert closed.events[0].id != cancelled.events[0].id
    late = replace(A, review_by_date=D - timedelta(hours=1))
    first = look(None, A, now=OVERDUE_NOW, version=4).events[0]
    moved = look(None, late, now=OVERDUE_NOW, version=4).events[0]
    assert first.type is moved.type is EventType.REVIEW_OVERDUE
    assert first.id != moved.id


@settings(deadline=None)
@given(
    previous=st.one_of(st.none(), strategies.snapshots()),
    current=strategies.snapshots(),
    now=strategies.aware_instants,
)
def test_observed_ids_differ_between_deployments(
    previous: Snapshot | None, current: Snapshot, now: datetime
) -> None:
    ours = look(previous, current, now=now, deployment=DEPLOYMENT).events
    theirs = look(previous, current, now=now, deployment=OTHER_DEPLOYMENT).events
    assert [e.type for e in ours] == [e.type for e in theirs]
    assert not {e.id for e in ours} & {e.id for e in theirs}


@settings(deadline=None)
@given(
    previous=st.one_of(st.none(), strategies.snapshots()),
    current=strategies.snapshots(),
    review=strategies.review_states(),
    version=st.integers(min_value=0, max_value=10**6),
    now=strategies.aware_instants,
    policy=strategies.policies(),
    key=strategies.session_keys,
)
def test_version_bumps_exactly_when_events_are_emitted(
    previous: Snapshot | None,
    current: Snapshot,
    review: rules.ReviewState,
    version: int,
    now: datetime,
    policy: rules.Policy,
    key: SessionKey,
) -> None:
    seen = observe(
        key, previous, current, review=review, version=version, now=now, policy=policy, labels={},
        deployment=DEPLOYMENT,
    )  # fmt: skip
    assert seen.version == (version + 1 if seen.events else version)
    assert len({event.id for event in seen.events}) == len(seen.events)
    assert all(event.key == key and event.observed_at == now for event in seen.events)
    again = observe(
        key, previous, current, review=review, version=version, now=now, policy=policy, labels={},
        deployment=DEPLOYMENT,
    )  # fmt: skip
    assert again == seen
    if previous is None:
        assert not any("field" in data(event) for event in seen.events)


def test_not_found_event() -> None:
    def gone(version: int, now: datetime = NOW, deployment: str = DEPLOYMENT) -> Event:
        return not_found(KEY, version=version, now=now, labels=LABELS, deployment=deployment)

    event = gone(3)
    assert event.type is EventType.SESSION_NOT_FOUND
    assert event.id == gone(3, NOW + timedelta(hours=1)).id
    assert event.id != gone(4).id
    assert event.id != gone(3, deployment=OTHER_DEPLOYMENT).id
    assert event.id != event_id(KEY.session_sid, 3, EventType.STATUS_CHANGED, deployment=DEPLOYMENT)
    assert event.key == KEY
    assert event.labels == LABELS
    assert data(event) == {}


def test_auth_failed_event() -> None:
    """One per episode, about no session: its id names the episode, not the time."""
    event = auth_failed(2, now=NOW, deployment=DEPLOYMENT)
    assert event.type is EventType.API_AUTH_FAILED
    assert event.id == auth_failed(2, now=NOW + timedelta(hours=1), deployment=DEPLOYMENT).id
    assert event.id != auth_failed(3, now=NOW, deployment=DEPLOYMENT).id
    assert event.key is None
    assert data(event) == {"message": AUTH_MESSAGE}


def test_auth_failed_says_what_to_fix_for_each_kind_of_credentials() -> None:
    """A static token is replaced by a person; OAuth tokens are renewed by spmon, so what a
    person fixes there is the client id or secret."""
    static = text(auth_failed(1, now=NOW, deployment=DEPLOYMENT), NOW)
    oauth = text(auth_failed(1, now=NOW, deployment=DEPLOYMENT, oauth=True), NOW)
    assert "set a new token" in static and "client id" not in static
    assert "client id and secret" in oauth and "set a new token" not in oauth
    assert data(auth_failed(1, now=NOW, deployment=DEPLOYMENT, oauth=True)) == {
        "message": OAUTH_MESSAGE
    }


# ── wire form ────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("moment", "wire"),
    [
        (datetime(2024, 3, 1, 12, 0, tzinfo=UTC), "2024-03-01T12:00:00Z"),
        (datetime(2024, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC), "2024-03-01T12:00:00.250000Z"),
        (datetime(2024, 3, 1, 19, 0, tzinfo=timezone(timedelta(hours=7))), "2024-03-01T12:00:00Z"),
        (datetime(2024, 3, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5))), "2024-03-01T12:00:00Z"),
    ],
)
def test_isoformat_is_rfc3339_utc_with_z(moment: datetime, wire: str) -> None:
    assert isoformat(moment) == wire
    assert wire_value(moment) == wire


@pytest.mark.parametrize("value", [None, "Closed", True, False, 3, 1.5])
def test_wire_value_passes_json_through(value: object) -> None:
    assert wire_value(value) == value


def test_to_wire_is_the_standard_webhooks_envelope() -> None:
    (event,) = look(A, B).events
    wire = event.to_wire()
    assert set(wire) == {"type", "timestamp", "data"}
    assert wire["type"] == "session.status_changed"
    assert wire["timestamp"] == "2024-03-01T06:00:00Z"
    assert wire["data"]["id"] == event.id
    assert wire["data"]["session"] == {
        "install_sid": KEY.install_sid,
        "exam_sid": KEY.exam_sid,
        "session_sid": KEY.session_sid,
        "labels": LABELS,
    }
    assert wire["data"]["field"] == "status"
    assert json.loads(json.dumps(wire)) == wire


def test_keyless_event_has_a_null_session() -> None:
    event = Event("evt_x", EventType.API_AUTH_FAILED, NOW, None, message="Token rejected.")
    wire = event.to_wire()
    assert wire["data"] == {"id": "evt_x", "session": None, "message": "Token rejected."}
    assert Event.from_wire(wire) == event


@settings(deadline=None)
@given(event=strategies.events())
def test_wire_round_trip(event: Event) -> None:
    wire = json.loads(json.dumps(event.to_wire()))
    back = Event.from_wire(wire)
    assert back == event
    assert back.observed_at.tzinfo is UTC
    # Instants come back as instants (in UTC), not as the strings the wire spells them with.
    instants = [back.snapshot.review_by_date] if back.snapshot is not None else []
    if back.change is not None and back.change.field is Field.REVIEW_BY_DATE:
        instants += [back.change.previous, back.change.current]
    assert all(moment is None or moment.tzinfo is UTC for moment in instants)
    assert back.change is None or type(back.change.previous) is type(event.change.previous)
    assert WIRE_TIMESTAMP.fullmatch(wire["timestamp"])
    assert back.to_wire() == wire


@settings(deadline=None)
@given(
    previous=strategies.snapshots(),
    current=strategies.snapshots(),
    now=strategies.aware_instants,
    tz=strategies.offsets,
)
def test_observed_events_survive_the_outbox(
    previous: Snapshot, current: Snapshot, now: datetime, tz: timezone
) -> None:
    """Every event observe() builds is JSON on the wire, with a Z timestamp, and reads back equal."""
    seen = observe(
        KEY,
        previous,
        current,
        review=rules.ReviewState(),
        version=0,
        now=now.astimezone(tz),
        policy=POLICY,
        labels=LABELS,
        deployment=DEPLOYMENT,
    )
    for event in seen.events:
        wire: Mapping[str, Any] = json.loads(json.dumps(event.to_wire()))
        assert WIRE_TIMESTAMP.fullmatch(wire["timestamp"])
        dates = [wire["data"]["review_by_date"]]
        if event.type is EventType.REVIEW_BY_DATE_CHANGED:
            dates += [wire["data"]["previous"], wire["data"]["current"]]
        assert all(date is None or WIRE_TIMESTAMP.fullmatch(date) for date in dates)
        assert Event.from_wire(wire) == event


@given(event=strategies.events())
def test_data_cannot_shadow_the_envelope(event: Event) -> None:
    """The envelope's own keys are the event's: no fact can replace the idempotency key."""
    wire = event.to_wire()
    assert wire["data"]["id"] == event.id
    if event.key is not None:
        assert wire["data"]["session"]["session_sid"] == event.key.session_sid
