"""One event → what a person or a machine reads: a view, a Slack message, an Alertmanager alert.

Pure: no I/O and no clock. `now` is an argument because "how late" depends on when the alert is
read, not only on when it was detected (a retried Slack post should not understate lateness).
`zone` is the display time zone (`display.timezone`): instants are shown there, with its
abbreviation, so a centre in Chicago reads "17:00 CST", not "23:00 UTC".
The webhook body is `Event.to_wire()` itself, stored as bytes in the outbox and signed as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Final

from monitor.core import timetext
from monitor.core.context import NO_CONTEXT
from monitor.core.events import Event, EventType, Field, Value, isoformat
from monitor.core.snapshot import Snapshot

__all__ = [
    "ALERTNAME",
    "SLACK_COLOURS",
    "Severity",
    "View",
    "alert",
    "severity",
    "slack_message",
    "text",
    "view",
    "which",
]

ALERTNAME = "ExamReviewOverdue"

_SLACK_FIELDS = 10  # Block Kit's limit on fields in one section
_HEADER_CHARS = 150  # Block Kit's limit on a header's text
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


class Severity(StrEnum):
    """How much an event asks of a person: the colour it is shown in."""

    CRITICAL = "critical"
    """Act now: a review is overdue, or spmon cannot poll."""
    WARNING = "warning"
    """Act soon: due soon, or a session vanished."""
    RESOLVED = "resolved"
    """Good news: an overdue review was resolved."""
    INFO = "info"
    """A change to know about."""


_SEVERITIES: Final[Mapping[EventType, Severity]] = {
    EventType.REVIEW_OVERDUE: Severity.CRITICAL,
    EventType.REVIEW_ESCALATED: Severity.CRITICAL,
    EventType.API_AUTH_FAILED: Severity.CRITICAL,
    EventType.REVIEW_DUE_SOON: Severity.WARNING,
    EventType.SESSION_NOT_FOUND: Severity.WARNING,
    EventType.REVIEW_OVERDUE_RESOLVED: Severity.RESOLVED,
}

SLACK_COLOURS: Final[Mapping[Severity, str]] = {
    Severity.CRITICAL: "#D92D20",
    Severity.WARNING: "#F79009",
    Severity.RESOLVED: "#12B76A",
    Severity.INFO: "#98A2B3",
}
"""An attachment's bar: red, amber, green, and a neutral grey for changes."""


def severity(event: Event) -> Severity:
    return _SEVERITIES.get(event.type, Severity.INFO)


@dataclass(frozen=True, slots=True)
class View:
    """An event as a person reads it: title, one-sentence headline, facts, a link."""

    title: str
    icon: str
    """A Slack emoji shortcode that tells the kind of news before a word is read."""
    subject: str
    """Who it is about: the exam and course (from the API, else the watch labels), else the
    session sid."""
    headline: str
    facts: tuple[tuple[str, str], ...]
    link: str | None


def view(event: Event, now: datetime, zone: tzinfo = UTC) -> View:
    title, icon = _TITLES[event.type]
    return View(
        title=title,
        icon=icon,
        subject=_subject(event),
        headline=_headline(event, now, zone),
        facts=_facts(event, now, zone),
        link=_link(event),
    )


def text(event: Event, now: datetime, zone: tzinfo = UTC) -> str:
    """One plain line: Slack's notification fallback, and a log line's `summary`."""
    shown = view(event, now, zone)
    return f"{shown.title} — {shown.subject}: {shown.headline}"


# -- Slack ---------------------------------------------------------------------------------


def slack_message(event: Event, now: datetime, zone: tzinfo = UTC) -> dict[str, Any]:
    """A Block Kit message for an incoming webhook, readable in two seconds, with `text` as
    the fallback Slack shows in notifications and to clients without blocks.

    The header stands alone; the rest sits in one attachment whose bar is the severity's
    colour (red overdue, green resolved, grey changes): the kind of news at a glance."""
    shown = view(event, now, zone)
    header = f"{shown.title}: {shown.subject}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(_escape(shown.headline))},
    ]
    if shown.facts:
        fields = [_mrkdwn(f"*{_escape(k)}*\n{_escape(v)}") for k, v in shown.facts]
        blocks.append({"type": "section", "fields": fields[:_SLACK_FIELDS]})
    if shown.link is not None:
        button = {"type": "button", "text": _plain("Open session"), "url": shown.link}
        blocks.append({"type": "actions", "elements": [button]})
    detected = timetext.when(event.observed_at, zone)
    context = f"{shown.icon} {event.type} · {event.id} · detected {detected}"
    blocks.append({"type": "context", "elements": [_mrkdwn(_escape(context))]})
    return {
        "text": text(event, now, zone),
        "blocks": [{"type": "header", "text": _plain(_cut(header, _HEADER_CHARS))}],
        "attachments": [{"color": SLACK_COLOURS[severity(event)], "blocks": blocks}],
    }


def _plain(value: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": value, "emoji": True}


def _mrkdwn(value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": value}


def _escape(value: str) -> str:
    """Slack's three control characters; API data and labels must not become mentions/links."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# -- Alertmanager --------------------------------------------------------------------------


def alert(
    event: Event, now: datetime, *, valid_for: float, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A postable Alertmanager v2 alert for review.overdue (firing until now + valid_for: the
    sink's hold plus its resend interval) or review.overdue_resolved (ends now).

    Labels are the alert's identity, so both types of one session carry the same set.
    """
    resolved = event.type is EventType.REVIEW_OVERDUE_RESOLVED
    ends = now if resolved else now + timedelta(seconds=valid_for)
    posted: dict[str, Any] = {
        "labels": _alert_labels(event, labels or {}),
        "annotations": _annotations(event, now, resolved=resolved),
        "startsAt": isoformat(_started(event, now)),
        "endsAt": isoformat(ends),
    }
    link = _link(event)
    if link is not None:
        posted["generatorURL"] = link
    return posted


def _alert_labels(event: Event, extra: Mapping[str, str]) -> dict[str, str]:
    """alertname and the sids first (they cannot be overridden), then the configured extra
    labels, then the watch labels; empty values are dropped (Alertmanager ignores them)."""
    found = {"alertname": ALERTNAME}
    if event.key is not None:
        found.update(
            install=event.key.install_sid, exam=event.key.exam_sid, session=event.key.session_sid
        )
    for name, value in {**event.labels, **extra}.items():
        if value:
            found.setdefault(_label_name(name), value)
    return found


def _label_name(name: str) -> str:
    """Alertmanager label names are [A-Za-z_][A-Za-z0-9_]*; watch labels are free-form."""
    cleaned = _LABEL_NAME.sub("_", name) or "_"
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def _annotations(event: Event, now: datetime, *, resolved: bool) -> dict[str, str]:
    shown = view(event, now)
    facts = "\n".join(f"{key}: {value}" for key, value in shown.facts)
    state = "resolved" if resolved else "overdue"
    return {
        "summary": f"Exam review {state}: {shown.subject}",
        "description": f"{shown.headline}\n{facts}",
    }


def _started(event: Event, now: datetime) -> datetime:
    """The deadline is when the alert became true; never later than now (a resolve caused by
    a deadline moved into the future must still have startsAt ≤ endsAt)."""
    deadline = _deadline(event)
    return min(deadline or event.observed_at, event.observed_at, now)


# -- the view's parts ----------------------------------------------------------------------

_TITLES: Mapping[EventType, tuple[str, str]] = {
    EventType.STATUS_CHANGED: ("Status changed", ":arrows_counterclockwise:"),
    EventType.REVIEW_REQUIRED_CHANGED: ("Review requirement changed", ":memo:"),
    EventType.REVIEW_BY_DATE_CHANGED: ("Review deadline moved", ":calendar:"),
    EventType.REVIEW_OVERDUE: ("Review overdue", ":rotating_light:"),
    EventType.REVIEW_OVERDUE_RESOLVED: ("Overdue review resolved", ":white_check_mark:"),
    EventType.REVIEW_DUE_SOON: ("Review due soon", ":hourglass_flowing_sand:"),
    EventType.REVIEW_ESCALATED: ("Overdue review escalated", ":sos:"),
    EventType.SESSION_NOT_FOUND: ("Session not found", ":grey_question:"),
    EventType.API_AUTH_FAILED: ("API token rejected", ":no_entry:"),
}


def which(event: Event) -> tuple[str, ...]:
    """The names a person knows the session by, as the API gave them: exam title, then course
    (once, when the course repeats the title); empty when the API named neither."""
    context = event.snapshot.context if event.snapshot is not None else None
    if context is None:
        return ()
    title, course = context.exam_title, context.course
    if title and course:
        code, colon, name = course.partition(": ")
        if course.startswith(title):
            return (course,)  # "BIO 101" and "BIO 101: Biology" say it once
        if colon and name and title.startswith(code):
            course = name  # "BIO 101 Midterm · Biology", not "· BIO 101: Biology"
    return tuple(name for name in (title, course) if name)


def _subject(event: Event) -> str:
    names = which(event)
    if names:
        return " · ".join(names)
    if event.labels:
        return ", ".join(f"{k}={v}" for k, v in sorted(event.labels.items()))
    if event.key is not None:
        return f"session {event.key.session_sid}"
    return "spmon"


def _headline(event: Event, now: datetime, zone: tzinfo) -> str:
    previous, current = (
        (event.change.previous, event.change.current) if event.change else (None, None)
    )
    deadline = _deadline(event)
    match event.type:
        case EventType.STATUS_CHANGED:
            return f"Status changed from {_shown(previous, zone)} to {_shown(current, zone)}."
        case EventType.REVIEW_REQUIRED_CHANGED:
            return "A review is now required." if current else "A review is no longer required."
        case EventType.REVIEW_BY_DATE_CHANGED:
            return f"The review deadline moved from {_shown(previous, zone)} to {_shown(current, zone)}."
        case EventType.REVIEW_OVERDUE | EventType.REVIEW_ESCALATED:
            the = f"Escalated (level {event.level}): the" if event.level else "The"
            due, late = timetext.date_or_none(deadline, zone), timetext.late(deadline, now)
            return f"{the} review was due {due} and is {late} late."
        case EventType.REVIEW_OVERDUE_RESOLVED:
            return _resolution(event.snapshot, zone)
        case EventType.REVIEW_DUE_SOON:
            due, left = timetext.date_or_none(deadline, zone), timetext.left(deadline, now)
            return f"The review is due {due}, in {left}."
        case EventType.SESSION_NOT_FOUND:
            return "The API answers 404 for this session: it was deleted, or the watch is wrong."
        case _:
            message = event.message or "The API rejected spmon's token."
            if "token endpoint" in message:
                fix = "check the OAuth client id and secret (api.auth)"
            else:
                fix = "set a new token (api.token_file is read again on its own)"
            return f"{message} Polling is paused; spmon keeps retrying: {fix}."


def _resolution(snapshot: Snapshot | None, zone: tzinfo) -> str:
    if snapshot is not None and snapshot.reviewed is True:
        return "The review was completed."
    if snapshot is None or snapshot.review_required is not True:
        return "A review is no longer required."
    moved = timetext.date_or_none(snapshot.review_by_date, zone)
    return f"The review deadline moved to {moved}."


def _facts(event: Event, now: datetime, zone: tzinfo) -> tuple[tuple[str, str], ...]:
    facts: list[tuple[str, str]] = [(key, value) for key, value in sorted(event.labels.items())]
    if event.key is not None:
        facts += [("session", event.key.session_sid), ("exam", event.key.exam_sid)]
    change, snapshot = event.change, event.snapshot
    if change is not None:
        facts.append(
            (str(change.field), f"{_shown(change.previous, zone)} → {_shown(change.current, zone)}")
        )
    if snapshot is None:
        return tuple(facts)
    context = snapshot.context or NO_CONTEXT
    if change is None or change.field is not Field.STATUS:
        facts.append(("status", _shown(snapshot.status, zone)))
    if context.status_reason:
        facts.append(("status reason", context.status_reason))
    deadline = snapshot.review_by_date
    if deadline is not None:
        facts.append(("review by", timetext.date_or_none(deadline, zone)))
        if deadline < now and snapshot.reviewed is not True and snapshot.review_required:
            facts.append(("late by", timetext.late(deadline, now)))
    # The exam and course are the subject already; these say where and who.
    if context.reviewer_sid:
        facts.append(("reviewed by", context.reviewer_sid))
    if context.install_name:
        facts.append(("install", context.install_name))
    return tuple(facts)


def _deadline(event: Event) -> datetime | None:
    return event.snapshot.review_by_date if event.snapshot is not None else None


def _link(event: Event) -> str | None:
    """Only a web link becomes a button or a generatorURL (never javascript:, never data:)."""
    url = event.snapshot.link(event.key) if event.snapshot is not None else None
    if url is not None and url.startswith(("https://", "http://")) and len(url) < 3000:
        return url
    return None


def _shown(value: Value, zone: tzinfo) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timetext.date_or_none(value, zone)
    return value
