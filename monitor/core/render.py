"""One event → what a person or a machine reads: a view, a Slack message, an Alertmanager alert.

Pure: no I/O and no clock. `now` is an argument because "how late" depends on when the alert is
read, not only on when it was detected (a retried Slack post should not understate lateness).
The webhook body is `Event.to_wire()` itself, stored as bytes in the outbox and signed as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.core.events import Event, EventType, Field, Value, isoformat
from monitor.core.snapshot import Snapshot

__all__ = [
    "ALERTNAME",
    "View",
    "alert",
    "duration",
    "slack_message",
    "text",
    "view",
    "when",
]

ALERTNAME = "ExamReviewOverdue"

_SLACK_FIELDS = 10  # Block Kit's limit on fields in one section
_HEADER_CHARS = 150  # Block Kit's limit on a header's text
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class View:
    """An event as a person reads it: title, one-sentence headline, facts, a link."""

    title: str
    icon: str
    """A Slack emoji shortcode that tells the kind of news before a word is read."""
    subject: str
    """Who it is about: the watch labels, else the session sid."""
    headline: str
    facts: tuple[tuple[str, str], ...]
    link: str | None


def view(event: Event, now: datetime) -> View:
    title, icon = _TITLES[event.type]
    return View(
        title=title,
        icon=icon,
        subject=_subject(event),
        headline=_headline(event, now),
        facts=_facts(event, now),
        link=_link(event),
    )


def text(event: Event, now: datetime) -> str:
    """One plain line: Slack's notification fallback, and a log line's `summary`."""
    shown = view(event, now)
    return f"{shown.title} — {shown.subject}: {shown.headline}"


# -- Slack ---------------------------------------------------------------------------------


def slack_message(event: Event, now: datetime) -> dict[str, Any]:
    """A Block Kit message for an incoming webhook, readable in two seconds, with `text` as
    the fallback Slack shows in notifications and to clients without blocks."""
    shown = view(event, now)
    header = f"{shown.title}: {shown.subject}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_cut(header, _HEADER_CHARS))},
        {"type": "section", "text": _mrkdwn(_escape(shown.headline))},
    ]
    if shown.facts:
        fields = [_mrkdwn(f"*{_escape(k)}*\n{_escape(v)}") for k, v in shown.facts]
        blocks.append({"type": "section", "fields": fields[:_SLACK_FIELDS]})
    if shown.link is not None:
        button = {"type": "button", "text": _plain("Open session"), "url": shown.link}
        blocks.append({"type": "actions", "elements": [button]})
    context = f"{shown.icon} {event.type} · {event.id} · detected {when(event.observed_at)}"
    blocks.append({"type": "context", "elements": [_mrkdwn(_escape(context))]})
    return {"text": text(event, now), "blocks": blocks}


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


def _subject(event: Event) -> str:
    if event.labels:
        return ", ".join(f"{k}={v}" for k, v in sorted(event.labels.items()))
    if event.key is not None:
        return f"session {event.key.session_sid}"
    return "spmon"


def _headline(event: Event, now: datetime) -> str:
    previous, current = (
        (event.change.previous, event.change.current) if event.change else (None, None)
    )
    deadline = _deadline(event)
    match event.type:
        case EventType.STATUS_CHANGED:
            return f"Status changed from {_shown(previous)} to {_shown(current)}."
        case EventType.REVIEW_REQUIRED_CHANGED:
            return "A review is now required." if current else "A review is no longer required."
        case EventType.REVIEW_BY_DATE_CHANGED:
            return f"The review deadline moved from {_shown(previous)} to {_shown(current)}."
        case EventType.REVIEW_OVERDUE:
            return f"The review was due {_date(deadline)} and is {_late(deadline, now)} late."
        case EventType.REVIEW_OVERDUE_RESOLVED:
            return _resolution(event.snapshot)
        case EventType.REVIEW_ESCALATED:
            return f"Escalated (level {event.level}): the review was due {_date(deadline)} and is {_late(deadline, now)} late."
        case EventType.REVIEW_DUE_SOON:
            return f"The review is due {_date(deadline)}, in {_left(deadline, now)}."
        case EventType.SESSION_NOT_FOUND:
            return "The API answers 404 for this session: it was deleted, or the watch is wrong."
        case _:
            message = event.message or "The API rejected spmon's token."
            if "token endpoint" in message:
                fix = "check the OAuth client id and secret (api.auth)"
            else:
                fix = "set a new token (api.token_file is read again on its own)"
            return f"{message} Polling is paused; spmon keeps retrying: {fix}."


def _resolution(snapshot: Snapshot | None) -> str:
    if snapshot is not None and snapshot.reviewed is True:
        return "The review was completed."
    if snapshot is None or snapshot.review_required is not True:
        return "A review is no longer required."
    return f"The review deadline moved to {_date(snapshot.review_by_date)}."


def _facts(event: Event, now: datetime) -> tuple[tuple[str, str], ...]:
    facts: list[tuple[str, str]] = [(key, value) for key, value in sorted(event.labels.items())]
    if event.key is not None:
        facts += [("session", event.key.session_sid), ("exam", event.key.exam_sid)]
    change, snapshot = event.change, event.snapshot
    if change is not None:
        facts.append((str(change.field), f"{_shown(change.previous)} → {_shown(change.current)}"))
    if snapshot is None:
        return tuple(facts)
    if change is None or change.field is not Field.STATUS:
        facts.append(("status", _shown(snapshot.status)))
    deadline = snapshot.review_by_date
    if deadline is not None:
        facts.append(("review by", _date(deadline)))
        if deadline < now and snapshot.reviewed is not True and snapshot.review_required:
            facts.append(("late by", _late(deadline, now)))
    return tuple(facts)


def _deadline(event: Event) -> datetime | None:
    return event.snapshot.review_by_date if event.snapshot is not None else None


def _link(event: Event) -> str | None:
    """Only a web link becomes a button or a generatorURL (never javascript:, never data:)."""
    url = event.snapshot.link(event.key) if event.snapshot is not None else None
    if url is not None and url.startswith(("https://", "http://")) and len(url) < 3000:
        return url
    return None


def _shown(value: Value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _date(value)
    return value


def _date(moment: datetime | None) -> str:
    return when(moment) if moment is not None else "none"


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _late(deadline: datetime | None, now: datetime) -> str:
    return duration((now - deadline).total_seconds()) if deadline is not None else "unknown"


def _left(deadline: datetime | None, now: datetime) -> str:
    return duration((deadline - now).total_seconds()) if deadline is not None else "unknown"


def duration(seconds: float) -> str:
    """Two units at most, largest first: 45s, 12m 5s, 2h 5m, 3d 4h."""
    total = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count or (unit == "s" and not parts):
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])
