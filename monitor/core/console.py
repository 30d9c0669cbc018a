"""One event → one line a person reads in a terminal: `spmon demo` and the log sink.

    09:02:11 OVERDUE   CHEM 201 Final · CHEM 201: Organic Chemistry  …d3e4f5  due 08:00, 1h 2m late

Local time (the display zone), a fixed-width tag the colour goes on, which session by the
names people know (exam, course) with the SID's tail to tell two apart, and what happened.
At most `WIDTH` columns before colour, so a line never wraps at 100. Pure.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Final

from monitor.core import render, timetext
from monitor.core.events import Event, EventType
from monitor.core.render import Severity

__all__ = ["ANSI", "WIDTH", "line", "painted", "status_line"]

WIDTH: Final = 100
_WHICH: Final = 44
"""Columns for which session; what happened gets the rest (38)."""

_TAGS: Final = {
    EventType.STATUS_CHANGED: "STATUS",
    EventType.REVIEW_REQUIRED_CHANGED: "REVIEW",
    EventType.REVIEW_BY_DATE_CHANGED: "DEADLINE",
    EventType.REVIEW_OVERDUE: "OVERDUE",
    EventType.REVIEW_OVERDUE_RESOLVED: "RESOLVED",
    EventType.REVIEW_ESCALATED: "ESCALATED",
    EventType.REVIEW_DUE_SOON: "DUE SOON",
    EventType.SESSION_NOT_FOUND: "NOT FOUND",
    EventType.API_AUTH_FAILED: "API AUTH",
}
_TAG: Final = max(len(tag) for tag in _TAGS.values())

ANSI: Final = {
    Severity.CRITICAL: "\x1b[1;31m",
    Severity.WARNING: "\x1b[33m",
    Severity.RESOLVED: "\x1b[32m",
    Severity.INFO: "\x1b[2m",
}
_RESET: Final = "\x1b[0m"


def line(event: Event, now: datetime, zone: tzinfo = UTC) -> str:
    """The plain line (no colour): `painted` adds it where the terminal shows colour. Columns
    are fixed, so what happened lines up down a screen of alerts."""
    at = event.observed_at.astimezone(zone).strftime("%H:%M:%S")
    tag = _TAGS[event.type].ljust(_TAG)
    names, tail = _which(event)
    room = _WHICH - len(tail) - (1 if tail else 0)
    which = (_cut(names, room) + (f" {tail}" if tail else "")).ljust(_WHICH)
    return _cut(f"{at} {tag} {which}  {_what(event, now, zone)}", WIDTH)


def painted(text: str, severity: Severity) -> str:
    """`text` with its tag (the second word) in the severity's colour."""
    at, _, rest = text.partition(" ")
    tag, rest = rest[:_TAG], rest[_TAG:]
    return f"{at} {ANSI[severity]}{tag}{_RESET}{rest}"


def status_line(
    at: datetime, zone: tzinfo, *, watched: int, overdue: int, due_soon: int, page: str | None
) -> str:
    """The demo's line every few seconds: counts, and where to look for more."""
    clock = at.astimezone(zone).strftime("%H:%M:%S")
    counts = f"{watched} watched, {overdue} overdue, {due_soon} due soon"
    where = f" · {page} (status) · {page}metrics" if page else ""
    return f"{clock} {'·' * _TAG} {counts}{where}"


def _which(event: Event) -> tuple[str, str]:
    """(names, the SID's tail): the names people know, and enough of the SID to tell apart two
    sessions of one exam (the full SID when there are no names)."""
    if event.key is None:
        return "spmon", ""
    # Names come from the API and labels from a watch list: a blank or multi-line one must
    # neither blank the column nor break the line.
    names = [" ".join(name.split()) for name in render.which(event)]
    if shown := " · ".join(name for name in names if name):
        return shown, "…" + event.key.session_sid[-6:]
    labels = " ".join(", ".join(f"{k}={v}" for k, v in event.labels.items()).split())
    if labels:
        return labels, "…" + event.key.session_sid[-6:]
    return f"session {event.key.session_sid}", ""


def _what(event: Event, now: datetime, zone: tzinfo) -> str:
    snapshot, change = event.snapshot, event.change
    deadline = snapshot.review_by_date if snapshot is not None else None
    due = timetext.short_date(deadline, now, zone) if deadline is not None else "?"
    match event.type:
        case EventType.STATUS_CHANGED if change is not None:
            reason = snapshot.context.status_reason if snapshot and snapshot.context else None
            moved = f"{change.previous or 'none'} → {change.current or 'none'}"
            return f"{moved} ({_cut(reason, 24)})" if reason else moved
        case EventType.REVIEW_REQUIRED_CHANGED:
            if change is not None and change.current:
                return f"review required, due {due}"
            return "review no longer required"
        case EventType.REVIEW_BY_DATE_CHANGED:
            return f"deadline now {due}"
        case EventType.REVIEW_OVERDUE:
            late = timetext.duration((now - deadline).total_seconds()) if deadline else "?"
            if deadline is not None and (now - deadline).total_seconds() < 60:
                late = "just now"
                return f"due {due}, overdue {late}"
            return f"due {due}, {late} late"
        case EventType.REVIEW_OVERDUE_RESOLVED:
            if snapshot is not None and snapshot.reviewed:
                return "reviewed"
            if snapshot is None or not snapshot.review_required:
                return "review no longer required"
            return f"deadline moved to {due}"
        case EventType.REVIEW_DUE_SOON:
            left = timetext.duration((deadline - now).total_seconds()) if deadline else "?"
            return f"due {due}, in {left}"
        case EventType.REVIEW_ESCALATED:
            late = timetext.duration((now - deadline).total_seconds()) if deadline else "?"
            return f"escalated (level {event.level}): due {due}, {late} late"
        case EventType.SESSION_NOT_FOUND:
            return "the API answers 404"
        case _:
            return "API token rejected; polling paused"


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
