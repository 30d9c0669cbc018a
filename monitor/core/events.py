"""Alerts as values: what happened, to which session, with an id that never changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from monitor.core.context import NO_CONTEXT, Context
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot

__all__ = [
    "ALERT_TYPES",
    "CONTEXT_FIELDS",
    "Change",
    "Event",
    "EventType",
    "Field",
    "Part",
    "Value",
    "event_id",
    "isoformat",
    "wire_value",
]


class EventType(StrEnum):
    STATUS_CHANGED = "session.status_changed"
    REVIEW_REQUIRED_CHANGED = "session.review_required_changed"
    REVIEW_BY_DATE_CHANGED = "session.review_by_date_changed"
    REVIEW_OVERDUE = "review.overdue"
    REVIEW_OVERDUE_RESOLVED = "review.overdue_resolved"
    REVIEW_DUE_SOON = "review.due_soon"
    REVIEW_ESCALATED = "review.escalated"
    SESSION_NOT_FOUND = "session.not_found"
    API_AUTH_FAILED = "api.auth_failed"


ALERT_TYPES = frozenset({str(EventType.REVIEW_OVERDUE), str(EventType.REVIEW_OVERDUE_RESOLVED)})
"""The types an Alertmanager sink carries: an alert is a state, and these open and close it."""


class Field(StrEnum):
    """Tracked fields, by the names used in metrics and payloads."""

    STATUS = "status"
    REVIEW_REQUIRED = "review_required"
    REVIEW_BY_DATE = "review_by_date"


CHANGE_TYPES: Mapping[Field, EventType] = {
    Field.STATUS: EventType.STATUS_CHANGED,
    Field.REVIEW_REQUIRED: EventType.REVIEW_REQUIRED_CHANGED,
    Field.REVIEW_BY_DATE: EventType.REVIEW_BY_DATE_CHANGED,
}


Value = str | bool | datetime | None
"""A tracked field's value: a status, a flag or an instant."""


class Change(NamedTuple):
    """One tracked field's move, as `diff` finds it and a `*_changed` event carries it."""

    field: Field
    previous: Value
    current: Value


Part = str | int | float | bool | None


def event_id(*parts: Part, deployment: str) -> str:
    """A deterministic id: the same transition, detected again after a crash, gets the same id.

    `deployment` is the state store's random id (made once, with the store): two deployments,
    or one started afresh, never share an id. Callers pass the transition's own identity: the
    session, its commit version, what happened and what it was about; a version is bumped by
    every commit that emits events, so A→B→A→B still yields four distinct ids.
    """
    if not deployment:
        raise ValueError("event ids need the deployment id of the state store")
    # JSON, not a joined string: no part can spell a different split of the others.
    text = json.dumps([deployment, *parts], separators=(",", ":"))
    return "evt_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def isoformat(value: datetime) -> str:
    """RFC 3339 UTC with a Z, second precision unless there is a fraction."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wire_value(value: object) -> object:
    """Datetimes become RFC 3339 UTC strings; everything else is already JSON."""
    return isoformat(value) if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class Event:
    """One alert, its facts typed: instants stay datetimes until `to_wire` spells them.

    Which facts an event carries follows its type: `change` for the three `*_changed` types,
    `snapshot` for every session event but `session.not_found`, `message` for
    `api.auth_failed`.
    """

    id: str
    type: EventType
    observed_at: datetime
    key: SessionKey | None
    labels: Mapping[str, str] = field(default_factory=dict)
    change: Change | None = None
    snapshot: Snapshot | None = None
    """The session's tracked fields as this event observed them."""
    message: str | None = None
    level: int | None = None
    """review.escalated: which `escalate` level (1 = the shortest `after`)."""

    def to_wire(self) -> dict[str, Any]:
        """The Standard Webhooks envelope: {type, timestamp, data}."""
        data: dict[str, Any] = {}
        if self.change is not None:
            name, previous, current = self.change
            data.update(field=str(name), previous=wire_value(previous), current=wire_value(current))
        if self.snapshot is not None:
            data.update(_snapshot_wire(self.snapshot, self.observed_at, self.key))
        if self.message is not None:
            data["message"] = self.message
        if self.level is not None:
            data["level"] = self.level
        session: dict[str, Any] | None = None
        if self.key is not None:
            session = {
                "install_sid": self.key.install_sid,
                "exam_sid": self.key.exam_sid,
                "session_sid": self.key.session_sid,
                "labels": dict(self.labels),
            }
        data.update(id=self.id, session=session)
        return {"type": str(self.type), "timestamp": isoformat(self.observed_at), "data": data}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Event:
        """Inverse of to_wire, for rows read back from the outbox: instants are datetimes again."""
        data = wire["data"]
        session = data["session"]
        key = None
        labels: dict[str, str] = {}
        if session is not None:
            key = SessionKey(session["install_sid"], session["exam_sid"], session["session_sid"])
            labels = dict(session.get("labels") or {})
        return cls(
            id=data["id"],
            type=EventType(wire["type"]),
            observed_at=datetime.fromisoformat(wire["timestamp"]),
            key=key,
            labels=labels,
            change=_change(data) if "field" in data else None,
            snapshot=_snapshot(data) if "status" in data else None,
            message=data.get("message"),
            level=data.get("level"),
        )


def _snapshot_wire(snapshot: Snapshot, now: datetime, key: SessionKey | None) -> dict[str, Any]:
    deadline = snapshot.review_by_date
    # Derived, not stored: how late the review was when observed is a function of the two.
    late = (now - deadline).total_seconds() if deadline is not None and deadline < now else 0.0
    return {
        "status": snapshot.status,
        "review_required": snapshot.review_required,
        "reviewed": snapshot.reviewed,
        "review_by_date": wire_value(deadline),
        "overdue_seconds": round(late, 3),
        "url": snapshot.link(key),
        **_context_wire(snapshot.context),
    }


CONTEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Context))
"""The session's names in `data`, each a string or null (core.context): never student data."""


def _context_wire(context: Context | None) -> dict[str, str | None]:
    context = context or NO_CONTEXT
    return {name: getattr(context, name) for name in CONTEXT_FIELDS}


def _context(data: Mapping[str, Any]) -> Context | None:
    found = Context(*(data.get(name) for name in CONTEXT_FIELDS))
    return None if found == NO_CONTEXT else found


def _change(data: Mapping[str, Any]) -> Change:
    name = Field(data["field"])
    if name is Field.REVIEW_BY_DATE:
        return Change(name, _instant(data["previous"]), _instant(data["current"]))
    return Change(name, data["previous"], data["current"])


def _snapshot(data: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        status=data["status"],
        review_required=data["review_required"],
        reviewed=data["reviewed"],
        review_by_date=_instant(data["review_by_date"]),
        url=data["url"],
        context=_context(data),
    )


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
