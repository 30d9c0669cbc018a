"""docs/events.md shows a real payload of every event type, and what a person reads in Slack,
Teams and e-mail (one alert, one digest), produced by the code itself (core.observe →
Event.to_wire / render / messages / digest_messages); README.md shows two of the same. This
test fails when an example drifts from the code;
`SPMON_UPDATE_DOCS=1 python -m pytest tests/sinks/test_events_doc.py` rewrites them."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core import console, digest, digest_messages, messages, observe, render, rules
from monitor.core.context import Context
from monitor.core.events import Event, EventType
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "events.md"
README = ROOT / "README.md"
BLOCK = re.compile(
    r"(<!-- example: (?P<name>\S+) -->\n```(?:json|text)\n)(?P<body>.*?)(^```)", re.S | re.M
)

KEY = SessionKey(
    "AI4f6c1a0e9b2d47c8a3e5f10b2c7d9e81",
    "EX9a3b5c7d1e2f40a6b8c0d2e4f6a8b0c2",
    "ES0d1e2f3a4b5c46d7e8f9a0b1c2d3e4f5",
)
LABELS = {"course": "BIO101", "section": "003"}
URL = f"https://proctoring.example.com/sessions/{KEY.session_sid}"
DEADLINE = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
POLICY = rules.Policy(
    overdue_repeat=None, due_soon=timedelta(hours=24), escalate=(timedelta(hours=4),)
)
DEPLOYMENT = "5b1f0e7c2a9d4c3e8f6a1b0d9c8e7f6a"  # a state file's id, fixed for the examples


CONTEXT = Context(
    exam_title="BIO 101 Midterm",
    course="BIO 101: Introduction to Biology (Fall 2026)",
    install_name="Example University - Canvas (production)",
)
REVIEWER = "US7e2d9c4b1a0f48e6b3c5d7e9f1a2b4c6"
ZONE = ZoneInfo("America/Chicago")  # display.timezone in every example people read


def snap(status: str, *, required: bool, reviewed: bool, deadline: datetime | None) -> Snapshot:
    context = replace(CONTEXT, reviewer_sid=REVIEWER) if reviewed else CONTEXT
    return Snapshot(status, required, reviewed, deadline, URL, context=context)


def sample_events() -> Iterator[Event]:
    """A session's life, run through the real pure code: booked → closed with a review due →
    due soon → overdue → reviewed; plus a 404 and a rejected token."""
    booked = snap("Scheduled", required=False, reviewed=False, deadline=None)
    closed = snap("Closed", required=True, reviewed=False, deadline=DEADLINE)
    done = snap("Closed", required=True, reviewed=True, deadline=DEADLINE)
    state, version = rules.ReviewState(), 3
    steps = [
        (booked, closed, datetime(2026, 11, 18, 15, 4, 5, tzinfo=UTC)),
        (closed, closed, datetime(2026, 11, 19, 17, 30, tzinfo=UTC)),
        (closed, closed, datetime(2026, 11, 20, 19, 15, tzinfo=UTC)),
        (closed, closed, datetime(2026, 11, 20, 21, 0, 0, 1000, tzinfo=UTC)),  # escalate: 4h
        (closed, done, datetime(2026, 11, 21, 8, 2, tzinfo=UTC)),
    ]
    for previous, current, now in steps:
        seen = observe.observe(
            KEY,
            previous,
            current,
            review=state,
            version=version,
            now=now,
            policy=POLICY,
            labels=LABELS,
            deployment=DEPLOYMENT,
        )
        state, version = seen.review, seen.version
        yield from seen.events
    gone = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    yield observe.not_found(
        KEY, version=version + 1, now=gone, labels=LABELS, deployment=DEPLOYMENT
    )
    yield observe.auth_failed(1, now=gone, deployment=DEPLOYMENT)  # as the poller builds it


STATUS_URL = "https://spmon.example.edu/sessions?list=overdue"  # http.public_url + the list
SENT = datetime(2026, 11, 20, 19, 15, tzinfo=UTC)  # when the digest window closed
DIGEST_POLICY = rules.Policy(overdue_repeat=None)  # the digest sink is not escalated to
COURSES = [  # (exam, course, hours late at SENT; None: reviewed in the window)
    ("BIO 101 Midterm", "BIO 101: Introduction to Biology (Fall 2026)", 26.5),
    ("CHEM 210 Quiz 4", "CHEM 210: Organic Chemistry I (Fall 2026)", 9.25),
    ("HIST 150 Final", "HIST 150: World History (Fall 2026)", 3.0),
    ("MATH 120 Exam 2", "MATH 120: Calculus I (Fall 2026)", 0.75),
    ("PSY 100 Unit 3", "PSY 100: General Psychology (Fall 2026)", None),
    ("ECON 201 Midterm", "ECON 201: Microeconomics (Fall 2026)", 0.005),
]


def _session(n: int) -> SessionKey:
    return SessionKey(
        KEY.install_sid, KEY.exam_sid[:-2] + f"{n:02d}", KEY.session_sid[:-2] + f"{n:02d}"
    )


def digest_events() -> Iterator[Event]:
    """One window of a digest sink: reviews going overdue at different lateness, one resolved,
    and two status changes (sessions starting), each from its own session."""
    for n, (title, course, late) in enumerate(COURSES):
        context = replace(CONTEXT, exam_title=title, course=course)
        deadline = SENT - timedelta(hours=late if late is not None else 5)
        closed = Snapshot("Closed", True, False, deadline, None, context=context)
        steps = [(closed, SENT if late is not None else deadline + timedelta(minutes=1))]
        if late is None:
            reviewed = replace(
                closed, reviewed=True, context=replace(context, reviewer_sid=REVIEWER)
            )
            steps.append((reviewed, SENT - timedelta(minutes=1)))
        state, previous = rules.ReviewState(), closed
        for current, now in steps:
            seen = observe.observe(
                _session(n),
                previous,
                current,
                review=state,
                version=1,
                now=now,
                policy=DIGEST_POLICY,
                labels={},
                deployment=DEPLOYMENT,
            )
            state, previous = seen.review, current
            if current is not closed or late is not None:
                yield from seen.events
    for n in (7, 8):
        booked = Snapshot("Scheduled", False, False, None, None, context=CONTEXT)
        started = replace(booked, status="InProgress")
        seen = observe.observe(
            _session(n),
            booked,
            started,
            review=rules.ReviewState(),
            version=1,
            now=SENT - timedelta(minutes=n),
            policy=DIGEST_POLICY,
            labels={},
            deployment=DEPLOYMENT,
        )
        yield from seen.events


def digest_group() -> digest.Group:
    rows = list(enumerate(digest_events(), start=1))
    (found,) = digest.group(rows, digest.Policy(window=120, max_items=6))
    return found


def mail_text(shown: messages.Mail) -> str:
    return f"Subject: {shown.subject}\n\n{shown.text.rstrip()}"


_SLACK_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def slack_as_read(message: dict[str, Any]) -> str:
    """A Slack digest's blocks as the reader sees them (header, items, "and N more")."""
    said = []
    for block in message["blocks"]:
        if block["type"] in ("header", "section"):
            said.append(block["text"]["text"])
        elif block["type"] == "context":
            said += [element["text"] for element in block["elements"]]
    return _SLACK_LINK.sub(r"\2 (\1)", "\n".join(said))


def people_examples() -> dict[str, Any]:
    """Slack, Teams and e-mail: one review.overdue alert and one digest of a window."""
    overdue = next(e for e in sample_events() if e.type is EventType.REVIEW_OVERDUE)
    now, found = overdue.observed_at, digest_group()
    slack_digest = digest_messages.slack_message(found, SENT, STATUS_URL, zone=ZONE)
    alert_mail = mail_text(messages.mail(overdue, now, zone=ZONE))
    return {
        "teams:review.overdue": messages.teams_message(overdue, now, ZONE),
        "email:review.overdue": alert_mail,
        "slack:digest": slack_digest,
        "teams:digest": digest_messages.teams_message(found, SENT, STATUS_URL, zone=ZONE),
        "email:digest": mail_text(digest_messages.mail(found, SENT, STATUS_URL, zone=ZONE)),
        "readme:slack-digest": slack_as_read(slack_digest),
        "readme:email-alert": alert_mail,
    }


def examples() -> dict[str, Any]:
    events = {str(event.type): event for event in sample_events()}
    assert set(events) == {str(kind) for kind in EventType}, "every type needs an example"
    found: dict[str, Any] = {f"webhook:{name}": e.to_wire() for name, e in events.items()}
    overdue = events[str(EventType.REVIEW_OVERDUE)]
    resolved = events[str(EventType.REVIEW_OVERDUE_RESOLVED)]
    found["slack:review.overdue"] = render.slack_message(overdue, overdue.observed_at, ZONE)
    found["console"] = "\n".join(
        console.line(event, event.observed_at, ZONE) for event in events.values()
    )
    for event in (overdue, resolved):
        found[f"alertmanager:{event.type}"] = render.alert(
            event, event.observed_at, valid_for=3600 + 60, labels={"severity": "page"}
        )
    found.update(people_examples())
    return found


def fill(text: str, blocks: dict[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        block = blocks[match["name"]]
        body = block if isinstance(block, str) else json.dumps(block, indent=2, ensure_ascii=False)
        return match.group(1) + body + "\n" + match.group(4)

    return BLOCK.sub(substitute, text)


def test_every_example_in_docs_events_md_is_what_the_code_produces() -> None:
    blocks = examples()
    readme = {name: block for name, block in blocks.items() if name.startswith("readme:")}
    docs = {name: block for name, block in blocks.items() if name not in readme}
    for path, wanted in ((DOC, docs), (README, readme)):
        text = path.read_text(encoding="utf-8")
        named = {match["name"] for match in BLOCK.finditer(text)}
        assert named == set(wanted), f"{path.name} example markers differ: {named ^ set(wanted)}"
        current = fill(text, wanted)
        if os.environ.get("SPMON_UPDATE_DOCS") == "1":
            path.write_text(current, encoding="utf-8")
            text = current
        assert current == text, (
            f"{path.name} examples are stale; regenerate with "
            "SPMON_UPDATE_DOCS=1 python -m pytest tests/sinks/test_events_doc.py"
        )


def test_the_digest_example_has_what_a_digest_shows() -> None:
    found = digest_group()
    assert (found.overdue, found.resolved, found.changes) == (5, 1, 2)
    assert found.more == 2
    assert STATUS_URL in slack_as_read(digest_messages.slack_message(found, SENT, STATUS_URL))
