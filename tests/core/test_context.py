"""The session's names in events: read leniently, shared in memory, never student data."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.core import console, render
from monitor.core.context import Context, shared_context
from monitor.core.events import Event, EventType
from monitor.core.keys import SessionKey
from monitor.core.parse import parse
from monitor.core.snapshot import Snapshot

KEY = SessionKey("AI" + "1" * 32, "EX" + "2" * 32, "ES" + "3" * 32)
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
TEMPLATE = "https://proctoring.example.com/i/{install_sid}/e/{exam_sid}/s/{session_sid}"


def body(**fields: Any) -> str:
    base: dict[str, Any] = {
        "sid": KEY.session_sid,
        "status": "Closed",
        "reviewRequired": True,
        "reviewed": False,
        "reviewByDate": "2026-11-18T12:00:00Z",
    }
    return json.dumps({**base, **fields})


def parsed(**fields: Any) -> Snapshot:
    found = parse(body(**fields), KEY, link_template=TEMPLATE)
    assert isinstance(found, Snapshot), found
    return found


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        (
            {"exam": "BIO 101 Midterm", "course": "BIO 101: Biology", "install": "Example U"},
            Context("BIO 101 Midterm", "BIO 101: Biology", "Example U"),
        ),
        (
            {"exam": {"title": "BIO 101 Midterm", "courseName": "BIO 101: Biology"}},
            Context("BIO 101 Midterm", "BIO 101: Biology"),
        ),
        ({"exam": "Quiz", "course": {"name": "Chemistry"}}, Context("Quiz", "Chemistry")),
        ({"exam": 7, "course": ["x"], "install": {"id": 1}}, None),
        (
            {"exam": "  ", "statusReason": "Requested time is outside"},
            Context(None, None, None, "Requested time is outside"),
        ),
        ({"exam": "A\n  B", "reviewByUserSid": "US9"}, Context("A B", reviewer_sid="US9")),
    ],
)
def test_names_are_read_leniently(fields: dict[str, Any], expected: Context | None) -> None:
    assert parsed(**fields).context == expected


def test_a_wrong_typed_name_never_loses_the_session() -> None:
    assert parsed(exam={"title": 5}, course=3.5, statusReason=False).status == "Closed"


def test_one_record_is_shared_by_every_session_of_an_exam() -> None:
    names = {"exam": "BIO 101 Midterm", "course": "BIO 101: Biology", "install": "Example U"}
    first, second = parsed(**names), parsed(**names)
    assert first.context is second.context
    reviewed = parsed(**names, reviewByUserSid="US" + "7" * 32)
    assert reviewed.context is not None and reviewed.context.reviewer_sid == "US" + "7" * 32
    # What memory keeps between polls: the shared record, without the reviewer.
    assert reviewed.kept().context is first.context
    assert first.kept() is first


def test_the_link_template_fills_in_only_when_the_api_gives_no_url() -> None:
    made = parsed()
    assert made.link(KEY) == (
        f"https://proctoring.example.com/i/{KEY.install_sid}/e/{KEY.exam_sid}/s/{KEY.session_sid}"
    )
    # Kept compact: one string per exam, not one per session.
    assert made.url is not None and KEY.session_sid not in made.url
    own = parsed(URL="https://api.example/s/1")
    assert own.link(KEY) == "https://api.example/s/1"
    without = parse(body(), KEY)
    assert isinstance(without, Snapshot) and without.url is None


def test_events_carry_the_names_and_round_trip() -> None:
    context = replace(shared_context("Quiz", "Chem", "U", "Late") or Context(), reviewer_sid="US1")
    seen = Snapshot("Closed", True, True, NOW - timedelta(hours=1), None, context=context)
    event = Event("evt_1", EventType.REVIEW_OVERDUE_RESOLVED, NOW, KEY, {}, snapshot=seen)
    wire = json.loads(json.dumps(event.to_wire()))
    assert {k: wire["data"][k] for k in ("exam_title", "course", "install_name")} == {
        "exam_title": "Quiz",
        "course": "Chem",
        "install_name": "U",
    }
    assert wire["data"]["status_reason"] == "Late" and wire["data"]["reviewer_sid"] == "US1"
    assert Event.from_wire(wire) == event


STUDENT = {
    "userSid": "US0badc0ffee0badc0ffee0badc0ffee00",
    "enrollmentSid": "EN0badc0ffee0badc0ffee0badc0ffee00",
    "enrollment": "Fall 2026, Section 003, Jane Q. Student",
    "user": {"firstName": "Jane", "lastName": "Student", "email": "jane.student@example.edu"},
    "firstName": "Jane",
    "lastName": "Student",
    "email": "jane.student@example.edu",
    "notes": "Call Jane Student at jane.student@example.edu",
    "account": "jane.student@example.edu",
}


@pytest.mark.parametrize("kind", list(EventType))
def test_student_data_in_a_body_never_reaches_a_sink(kind: EventType) -> None:
    seen = parsed(exam="BIO 101 Midterm", course="BIO 101: Biology", **STUDENT)
    event = Event("evt_1", kind, NOW, KEY, {"course": "BIO101"}, snapshot=seen)
    bodies = [
        json.dumps(event.to_wire()),
        json.dumps(render.slack_message(event, NOW)),
        json.dumps(render.alert(event, NOW, valid_for=60)),
        render.text(event, NOW),
        console.line(event, NOW),
    ]
    for sent in bodies:
        for needle in ("Jane", "Student", "jane.student", "0badc0ffee"):
            assert needle not in sent
