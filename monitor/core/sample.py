"""The sample event `spmon test-sink` sends: plainly a test, about a session that cannot exist.

Every sink renders it the way it renders a real one, so what arrives is what a real alert of
that type looks like; its label and headline say TEST, and its SIDs are all zeros but for a
"7e57", which no SmarterProctoring install hands out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.core.events import Change, Event, EventType, Field
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot

__all__ = ["LABELS", "TEST_KEY", "sample_event"]

TEST_KEY = SessionKey("AI" + "0" * 28 + "7e57", "EX" + "0" * 28 + "7e57", "ES" + "0" * 28 + "7e57")
LABELS = {"test": "TEST alert from spmon test-sink, not a real session"}


def sample_event(kind: EventType, now: datetime, *, nonce: str) -> Event:
    """A `kind` event observed at `now`; `nonce` makes its id new on every run, so receivers
    that de-duplicate by id (webhook-id, Message-ID) show each test."""
    deadline = now - timedelta(hours=2)
    change: Change | None = None
    snapshot: Snapshot | None = Snapshot("Completed", True, False, deadline)
    message: str | None = None
    match kind:
        case EventType.STATUS_CHANGED:
            change = Change(Field.STATUS, "In Progress", "Completed")
        case EventType.REVIEW_REQUIRED_CHANGED:
            change = Change(Field.REVIEW_REQUIRED, False, True)
        case EventType.REVIEW_BY_DATE_CHANGED:
            change = Change(Field.REVIEW_BY_DATE, deadline - timedelta(days=1), deadline)
        case EventType.REVIEW_OVERDUE_RESOLVED:
            snapshot = Snapshot("Completed", True, True, deadline)
        case EventType.REVIEW_DUE_SOON:
            snapshot = Snapshot("Completed", True, False, now + timedelta(hours=2))
        case EventType.SESSION_NOT_FOUND:
            snapshot = None
        case EventType.API_AUTH_FAILED:
            snapshot, message = None, "TEST: this is a sample from spmon test-sink."
    return Event(
        id=f"evt_test_{nonce}",
        type=kind,
        observed_at=now,
        key=None if kind is EventType.API_AUTH_FAILED else TEST_KEY,
        labels=dict(LABELS),
        change=change,
        snapshot=snapshot,
        message=message,
    )
