"""docs/events.md shows a real payload of every event type, produced by the code itself
(core.observe → Event.to_wire / render). This test fails when an example drifts from the code;
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

from monitor.core import console, observe, render, rules
from monitor.core.context import Context
from monitor.core.events import Event, EventType
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
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
ZONE = ZoneInfo("America/Chicago")  # display.timezone in the Slack and console examples


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
    return found


def fill(text: str, blocks: dict[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        block = blocks[match["name"]]
        body = block if isinstance(block, str) else json.dumps(block, indent=2, ensure_ascii=False)
        return match.group(1) + body + "\n" + match.group(4)

    return BLOCK.sub(substitute, text)


def test_every_example_in_docs_events_md_is_what_the_code_produces() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = examples()
    named = {match["name"] for match in BLOCK.finditer(text)}
    assert named == set(blocks), f"docs/events.md example markers differ: {named ^ set(blocks)}"
    current = fill(text, blocks)
    if os.environ.get("SPMON_UPDATE_DOCS") == "1":
        DOC.write_text(current, encoding="utf-8")
        text = current
    assert current == text, (
        "docs/events.md examples are stale; regenerate with "
        "SPMON_UPDATE_DOCS=1 python -m pytest tests/sinks/test_events_doc.py"
    )
