"""diff(previous, current): a baseline is not a change, and dates compare as instants."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.diff import Change, diff
from monitor.core.events import Field
from monitor.core.keys import SessionKey
from monitor.core.parse import parse
from monitor.core.snapshot import Snapshot

DEADLINE = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
BASE = Snapshot("Scheduled", True, False, DEADLINE, "https://app.example/s/1")
KEY = SessionKey("AI" + "0" * 32, "EX" + "0" * 32, "ES" + "0" * 32)

ATTRIBUTE = {
    Field.STATUS: "status",
    Field.REVIEW_REQUIRED: "review_required",
    Field.REVIEW_BY_DATE: "review_by_date",
}


def document(review_by_date: str) -> str:
    """A session document for KEY with only its deadline set."""
    fields = {"status": None, "reviewRequired": None, "reviewed": None}
    return json.dumps({"sid": KEY.session_sid, **fields, "reviewByDate": review_by_date})


def tracked(snapshot: Snapshot) -> dict[Field, object]:
    return {name: getattr(snapshot, attribute) for name, attribute in ATTRIBUTE.items()}


@given(current=strategies.snapshots())
def test_first_sighting_is_a_baseline(current: Snapshot) -> None:
    assert diff(None, current) == ()


@given(snapshot=strategies.snapshots())
def test_a_snapshot_does_not_differ_from_itself(snapshot: Snapshot) -> None:
    assert diff(snapshot, snapshot) == ()
    assert diff(snapshot, replace(snapshot)) == ()


@pytest.mark.parametrize(
    ("field", "current"),
    [
        (Field.STATUS, replace(BASE, status="Closed")),
        (Field.STATUS, replace(BASE, status=None)),
        (Field.STATUS, replace(BASE, status="Some Status Nobody Documented")),
        (Field.REVIEW_REQUIRED, replace(BASE, review_required=False)),
        (Field.REVIEW_REQUIRED, replace(BASE, review_required=None)),
        (Field.REVIEW_BY_DATE, replace(BASE, review_by_date=DEADLINE + timedelta(days=1))),
        (Field.REVIEW_BY_DATE, replace(BASE, review_by_date=DEADLINE + timedelta(microseconds=1))),
        (Field.REVIEW_BY_DATE, replace(BASE, review_by_date=None)),
    ],
)
def test_each_field_change_is_reported_once(field: Field, current: Snapshot) -> None:
    attribute = ATTRIBUTE[field]
    assert diff(BASE, current) == (
        Change(field, getattr(BASE, attribute), getattr(current, attribute)),
    )


def test_a_field_appearing_from_null_is_a_change() -> None:
    before = Snapshot(None, None, None, None)
    after = Snapshot("Scheduled", True, None, DEADLINE)
    assert diff(before, after) == (
        Change(Field.STATUS, None, "Scheduled"),
        Change(Field.REVIEW_REQUIRED, None, True),
        Change(Field.REVIEW_BY_DATE, None, DEADLINE),
    )


def test_every_field_changing_is_reported_in_a_fixed_order() -> None:
    after = Snapshot("Closed", False, True, DEADLINE + timedelta(hours=1), "https://elsewhere")
    changes = diff(BASE, after)
    assert [change.field for change in changes] == [
        Field.STATUS,
        Field.REVIEW_REQUIRED,
        Field.REVIEW_BY_DATE,
    ]
    assert changes[2] == Change(Field.REVIEW_BY_DATE, DEADLINE, DEADLINE + timedelta(hours=1))


@pytest.mark.parametrize(
    "current",
    [
        replace(BASE, url="https://app.example/s/2"),
        replace(BASE, reviewed=True),
        replace(BASE, reviewed=None),
    ],
)
def test_untracked_fields_are_not_diffed(current: Snapshot) -> None:
    # `reviewed` surfaces through the review rules (overdue → resolved), `url` only links alerts.
    assert diff(BASE, current) == ()


@pytest.mark.parametrize(
    "same_instant",
    [
        DEADLINE.astimezone(timezone(timedelta(hours=7))),
        DEADLINE.astimezone(timezone(timedelta(hours=-5, minutes=-30))),
        DEADLINE.astimezone(timezone(timedelta(0), "GMT")),
    ],
)
def test_another_zone_for_the_same_instant_is_not_a_change(same_instant: datetime) -> None:
    assert diff(BASE, replace(BASE, review_by_date=same_instant)) == ()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2024-03-01T12:30:00Z", "2024-03-01T12:30:00+00:00"),
        ("2024-03-01T12:30:00Z", "2024-03-01T19:30:00+07:00"),
        ("2024-03-01T12:30:00.000Z", "2024-03-01T12:30:00Z"),
        ("2024-03-01T12:30:00.5000000Z", "2024-03-01T13:30:00.5+01:00"),
    ],
)
def test_format_only_date_difference_is_not_a_change(first: str, second: str) -> None:
    before = parse(document(first), KEY)
    after = parse(document(second), KEY)
    assert isinstance(before, Snapshot)
    assert isinstance(after, Snapshot)
    assert diff(before, after) == ()


@given(instant=strategies.aware_instants, data=st.data())
def test_no_spelling_of_the_same_instant_is_a_change(
    instant: datetime, data: st.DataObject
) -> None:
    """Invariant 8, end to end: parse two spellings of one deadline and diff them."""
    spellings = [data.draw(strategies.instant_spellings(instant)) for _ in range(2)]
    before, after = (parse(document(text), KEY) for text in spellings)
    assert isinstance(before, Snapshot)
    assert isinstance(after, Snapshot)
    assert diff(before, after) == ()


@given(previous=strategies.snapshots(), current=strategies.snapshots())
def test_applying_the_changes_reconstructs_the_tracked_fields(
    previous: Snapshot, current: Snapshot
) -> None:
    changes = diff(previous, current)
    fields = tracked(previous)
    for change in changes:
        assert fields[change.field] == change.previous
        fields[change.field] = change.current
    assert fields == tracked(current)


@given(previous=strategies.snapshots(), current=strategies.snapshots())
def test_each_field_is_reported_at_most_once_and_only_when_it_differs(
    previous: Snapshot, current: Snapshot
) -> None:
    changes = diff(previous, current)
    assert len({change.field for change in changes}) == len(changes)
    before, after = tracked(previous), tracked(current)
    assert {change.field for change in changes} == {f for f in Field if before[f] != after[f]}
    assert all(change.previous != change.current for change in changes)
