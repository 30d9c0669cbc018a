"""Event → view, Slack message and Alertmanager alert: pure functions, literal times."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.core import render, timetext
from monitor.core.events import Change, Event, EventType, Field
from monitor.core.snapshot import Snapshot
from tests.sinks.sinkkit import make_event, make_key

DETECTED = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
DUE = "2026-11-18T08:00:00Z"
DUE_AT = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)


def overdue() -> Event:
    seen = Snapshot("Closed", True, False, DUE_AT, "https://proctoring.example.com/sessions/ES1")
    event = make_event(1, 1, kind=EventType.REVIEW_OVERDUE, at=DETECTED)
    return replace(event, change=None, snapshot=seen)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "less than a second"),
        (45, "45s"),
        (60, "1m"),
        (725, "12m 5s"),
        (7205, "2h"),
        (7500, "2h 5m"),
        (90061, "1d 1h"),
        (86405, "1d"),
        (273600, "3d 4h"),
    ],
)
def test_durations_read_as_two_units_at_most(seconds: float, text: str) -> None:
    assert timetext.duration(seconds) == text


def test_overdue_says_when_it_was_due_and_how_late_it_is_now() -> None:
    event = overdue()
    assert render.view(event, DETECTED).headline == (
        "The review was due 2026-11-18 08:00 UTC and is 1h late."
    )
    later = render.view(event, DETECTED + timedelta(hours=2, minutes=5))
    assert "3h 5m late" in later.headline
    assert ("late by", "3h 5m") in later.facts


def test_the_subject_is_the_watch_labels_and_the_facts_name_session_and_exam() -> None:
    shown = render.view(overdue(), DETECTED)
    key = make_key(1)
    assert shown.subject == "course=BIO101"
    assert shown.facts[:3] == (
        ("course", "BIO101"),
        ("session", key.session_sid),
        ("exam", key.exam_sid),
    )
    assert ("review by", "2026-11-18 08:00 UTC") in shown.facts


def test_a_status_change_shows_previous_and_current() -> None:
    event = make_event(1, 2, at=DETECTED)
    shown = render.view(event, DETECTED)
    assert shown.title == "Status changed"
    assert shown.headline == "Status changed from step-1 to step-2."
    assert ("status", "step-1 → step-2") in shown.facts


@pytest.mark.parametrize(
    ("fields", "headline"),
    [
        ({"reviewed": True}, "The review was completed."),
        ({"review_required": False}, "A review is no longer required."),
        (
            {"review_by_date": datetime(2026, 11, 20, tzinfo=UTC)},
            "The review deadline moved to 2026-11-20 00:00 UTC.",
        ),
    ],
)
def test_a_resolution_says_why(fields: dict[str, object], headline: str) -> None:
    seen = replace(Snapshot(None, True, False, DUE_AT), **fields)
    made = make_event(1, 2, kind=EventType.REVIEW_OVERDUE_RESOLVED, at=DETECTED)
    event = replace(made, change=None, snapshot=seen)
    assert render.view(event, DETECTED).headline == headline


@pytest.mark.parametrize("kind", list(EventType))
def test_every_type_renders_a_title_headline_and_fallback(kind: EventType) -> None:
    event = make_event(1, 1, kind=kind, at=DETECTED)
    shown = render.view(event, DETECTED)
    assert shown.title
    assert shown.headline.endswith(".")
    assert render.text(event, DETECTED).startswith(shown.title + " — ")


def test_auth_failure_has_no_session() -> None:
    event = Event("evt_x", EventType.API_AUTH_FAILED, DETECTED, None, message="Token rejected.")
    shown = render.view(event, DETECTED)
    assert shown.subject == "spmon"
    assert shown.facts == ()
    assert shown.headline.startswith("Token rejected.")


def test_slack_message_blocks_and_fallback() -> None:
    event = overdue()
    message = render.slack_message(event, DETECTED)
    (header,) = message["blocks"]
    assert header["type"] == "header"
    assert header["text"]["text"] == "Review overdue: course=BIO101"
    (attachment,) = message["attachments"]
    assert attachment["color"] == render.SLACK_COLOURS[render.Severity.CRITICAL]
    blocks = attachment["blocks"]
    assert [block["type"] for block in blocks] == ["section", "section", "actions", "context"]
    assert message["text"] == render.text(event, DETECTED)
    assert blocks[2]["elements"][0]["url"] == "https://proctoring.example.com/sessions/ES1"
    assert len(blocks[1]["fields"]) <= 10
    assert event.id in blocks[-1]["elements"][0]["text"]


def test_slack_text_escapes_control_characters_and_drops_unsafe_links() -> None:
    event = replace(
        make_event(1, 2, labels={"course": "<!channel> & co"}),
        change=Change(Field.STATUS, "a", "<@U123>"),
        snapshot=Snapshot(None, None, None, None, "javascript:x"),
    )
    message = render.slack_message(event, DETECTED)
    rendered = str(message["attachments"])
    assert "<!channel>" not in rendered
    assert "<@U123>" not in rendered
    assert "&lt;!channel&gt; &amp; co" in rendered
    assert "actions" not in [block["type"] for block in message["attachments"][0]["blocks"]]


def test_firing_alert_labels_annotations_and_validity() -> None:
    key = make_key(1)
    posted = render.alert(overdue(), DETECTED, valid_for=240, labels={"severity": "page"})
    assert posted["labels"] == {
        "alertname": "ExamReviewOverdue",
        "install": key.install_sid,
        "exam": key.exam_sid,
        "session": key.session_sid,
        "course": "BIO101",
        "severity": "page",
    }
    assert posted["startsAt"] == DUE
    assert posted["endsAt"] == "2026-11-18T09:04:00Z"
    assert posted["generatorURL"] == "https://proctoring.example.com/sessions/ES1"
    assert posted["annotations"]["summary"] == "Exam review overdue: course=BIO101"
    assert "1h late" in posted["annotations"]["description"]


def test_resolved_alert_has_the_same_labels_and_ends_now() -> None:
    firing = render.alert(overdue(), DETECTED, valid_for=240)
    moved = replace(
        make_event(1, 2, kind=EventType.REVIEW_OVERDUE_RESOLVED, at=DETECTED),
        change=None,
        snapshot=Snapshot(None, True, False, datetime(2026, 12, 1, tzinfo=UTC)),
    )
    resolved = render.alert(moved, DETECTED, valid_for=240)
    assert resolved["labels"] == firing["labels"]
    assert resolved["endsAt"] == "2026-11-18T09:00:00Z"
    assert resolved["startsAt"] <= resolved["endsAt"]  # a deadline moved into the future


def test_alert_label_names_are_made_valid() -> None:
    event = make_event(1, 1, kind=EventType.REVIEW_OVERDUE, labels={"course-code": "B", "1st": "x"})
    labels = render.alert(event, DETECTED, valid_for=60)["labels"]
    assert labels["course_code"] == "B"
    assert labels["_1st"] == "x"
