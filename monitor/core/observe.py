"""One poll's verdict: which events a new observation causes, with their ids. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.core import diff, rules
from monitor.core.events import CHANGE_TYPES, Event, EventType, Part, event_id, isoformat
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot

__all__ = ["Observation", "not_found", "observe", "wire_value"]


@dataclass(frozen=True, slots=True)
class Observation:
    review: rules.ReviewState
    version: int
    events: tuple[Event, ...]


def wire_value(value: object) -> object:
    """Datetimes become RFC 3339 UTC strings; everything else is already JSON."""
    return isoformat(value) if isinstance(value, datetime) else value


def _review_data(snapshot: Snapshot, now: datetime) -> dict[str, Any]:
    deadline = snapshot.review_by_date
    late = (now - deadline).total_seconds() if deadline is not None and deadline < now else 0.0
    return {
        "status": snapshot.status,
        "review_required": snapshot.review_required,
        "reviewed": snapshot.reviewed,
        "review_by_date": wire_value(deadline),
        "overdue_seconds": round(late, 3),
        "url": snapshot.url,
    }


def observe(
    key: SessionKey,
    previous: Snapshot | None,
    current: Snapshot,
    *,
    review: rules.ReviewState,
    version: int,
    now: datetime,
    policy: rules.Policy,
    labels: Mapping[str, str],
    deployment: str,
) -> Observation:
    """Diff against the last good snapshot, run the review rules, and name every event.

    `version` counts commits that emitted events; the new events share version + 1, so the same
    transition detected again after a crash gets the same ids, and a later one never does. An
    id also names what changed (values, deadline): a state file restored from a backup resumes
    old versions, and a different transition at a reused version must still get a new id.
    """
    changes = diff.diff(previous, current)
    review, findings = rules.evaluate(current, review, now, policy)
    if not changes and not findings:
        return Observation(review, version, ())
    version += 1
    context = _review_data(current, now)
    deadline = _part(current.review_by_date)
    events = [
        Event(
            id=event_id(
                key.session_sid,
                version,
                CHANGE_TYPES[change.field],
                _part(change.previous),
                _part(change.current),
                deployment=deployment,
            ),
            type=CHANGE_TYPES[change.field],
            observed_at=now,
            key=key,
            labels=labels,
            data={
                "field": str(change.field),
                "previous": wire_value(change.previous),
                "current": wire_value(change.current),
                **context,
            },
        )
        for change in changes
    ]
    events.extend(
        Event(
            event_id(key.session_sid, version, kind, deadline, deployment=deployment),
            kind,
            now,
            key,
            labels,
            context,
        )
        for kind in findings
    )
    return Observation(review, version, tuple(events))


def not_found(
    key: SessionKey, *, version: int, now: datetime, labels: Mapping[str, str], deployment: str
) -> Event:
    """The API answered 404 for a session that existed (or was expected) before."""
    kind = EventType.SESSION_NOT_FOUND
    ident = event_id(key.session_sid, version, kind, deployment=deployment)
    return Event(ident, kind, now, key, labels, {})


def _part(value: diff.Value) -> Part:
    return isoformat(value) if isinstance(value, datetime) else value
