"""Alerts as values: what happened, to which session, with an id that never changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from monitor.core.keys import SessionKey

__all__ = ["ALERT_TYPES", "Event", "EventType", "Field", "Part", "event_id", "isoformat"]


class EventType(StrEnum):
    STATUS_CHANGED = "session.status_changed"
    REVIEW_REQUIRED_CHANGED = "session.review_required_changed"
    REVIEW_BY_DATE_CHANGED = "session.review_by_date_changed"
    REVIEW_OVERDUE = "review.overdue"
    REVIEW_OVERDUE_RESOLVED = "review.overdue_resolved"
    REVIEW_DUE_SOON = "review.due_soon"
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


@dataclass(frozen=True, slots=True)
class Event:
    """One alert. `data` is everything a receiver needs, already in wire form (JSON values)."""

    id: str
    type: EventType
    observed_at: datetime
    key: SessionKey | None
    labels: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The Standard Webhooks envelope: {type, timestamp, data}."""
        session: dict[str, Any] | None = None
        if self.key is not None:
            session = {
                "install_sid": self.key.install_sid,
                "exam_sid": self.key.exam_sid,
                "session_sid": self.key.session_sid,
                "labels": dict(self.labels),
            }
        return {
            "type": str(self.type),
            "timestamp": isoformat(self.observed_at),
            # The envelope's own keys come last: no data key may replace the idempotency key.
            "data": {**self.data, "id": self.id, "session": session},
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Event:
        """Inverse of to_wire, for rows read back from the outbox."""
        data = dict(wire["data"])
        session = data.pop("session")
        key = None
        labels: dict[str, str] = {}
        if session is not None:
            key = SessionKey(session["install_sid"], session["exam_sid"], session["session_sid"])
            labels = dict(session.get("labels") or {})
        return cls(
            id=data.pop("id"),
            type=EventType(wire["type"]),
            observed_at=datetime.fromisoformat(wire["timestamp"]),
            key=key,
            labels=labels,
            data=data,
        )
