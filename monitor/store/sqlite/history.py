"""History on SQLite: transitions written beside the outbox rows of the same events, the read
model's queries (`ReadStore`) and the purge behind `history.retention` (`HistoryRetention`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.core.events import EventType, Field, Value, wire_value
from monitor.core.keys import SessionKey
from monitor.core.outbox import OutboxState
from monitor.core.rules import ReviewState
from monitor.core.snapshot import Snapshot
from monitor.core.views import Delivery, SessionRow, Transition
from monitor.core.watches import NO_LABELS, shared_labels
from monitor.store.ports import Deliveries
from monitor.store.sqlite.connection import Connection, Db, dt

__all__ = ["History", "insert_events"]

_STATE = (
    "s.status, s.review_required, s.reviewed, s.review_by_date, s.url, s.appointment_date,"
    " s.observed_at, s.overdue_since, s.last_overdue_alert, s.due_soon_for, s.missing,"
    " s.failures, s.last_poll_at, s.last_outcome"
)
_WATCHED = (
    f"SELECT w.install_sid, w.exam_sid, w.session_sid, w.labels, w.source, {_STATE}"  # noqa: S608  # fixed fragments
    " FROM watches w LEFT JOIN session s ON s.session_sid = w.session_sid"
    " WHERE w.removed_at IS NULL"
)
_UNWATCHED = (
    f"SELECT s.install_sid, s.exam_sid, s.session_sid, '{{}}', NULL, {_STATE}"  # noqa: S608  # fixed fragments
    " FROM session s WHERE s.session_sid=?"
)
_TRANSITIONS = (
    "SELECT event_id, session_sid, type, observed_at, field, previous, current, message"
    " FROM transition WHERE session_sid=? ORDER BY observed_at, id"
)
_DELIVERIES = (
    "SELECT event_id, sink, event_type, state, attempts, last_error, created_at, delivered_at,"
    " next_attempt_at FROM outbox WHERE session_sid=? ORDER BY id"
)


def insert_events(db: Db, deliveries: Deliveries, now: float) -> None:
    """The outbox rows of `deliveries` and a transition for each session event among them,
    routed or not: both in the caller's transaction, so history and alerts never disagree."""
    transitions = []
    for event, sinks in deliveries:
        body = json.dumps(event.to_wire(), separators=(",", ":")).encode()
        session = event.key.session_sid if event.key else ""
        db.executemany(
            "INSERT INTO outbox (event_id, sink, session_sid, event_type, payload, created_at,"
            " next_attempt_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            [(event.id, sink, session, str(event.type), body, now, now) for sink in sinks],
        )
        if event.key is not None:
            name, previous, current = event.change or (None, None, None)
            transitions.append(
                (event.id, session, str(event.type), event.observed_at.timestamp(),
                 None if name is None else str(name), _dump(previous) if name else None,
                 _dump(current) if name else None, event.message)
            )  # fmt: skip
    db.executemany(
        "INSERT INTO transition (event_id, session_sid, type, observed_at, field, previous,"
        " current, message) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        transitions,
    )


class History(Connection):
    _has_history = True
    """False on a state file read (not migrated) from before the transition table."""

    async def session_rows(self) -> list[SessionRow]:
        """Every watched session with its stored state, in the order watched."""
        return await self._read(
            lambda db: [_row(r) for r in db.execute(f"{_WATCHED} ORDER BY w.id")]
        )

    async def session_row(self, session_sid: str) -> SessionRow | None:
        """One session: watched, or no longer watched but still in the state file."""

        def find(db: Db) -> SessionRow | None:
            row = db.execute(f"{_WATCHED} AND w.session_sid=?", (session_sid,)).fetchone()
            row = row or db.execute(_UNWATCHED, (session_sid,)).fetchone()
            return None if row is None else _row(row)

        return await self._read(find)

    async def transitions(self, session_sid: str) -> list[Transition]:
        if not self._has_history:
            return []
        rows = await self._read(lambda db: db.execute(_TRANSITIONS, (session_sid,)).fetchall())
        return [_transition(*row) for row in rows]

    async def deliveries(self, session_sid: str) -> list[Delivery]:
        rows = await self._read(lambda db: db.execute(_DELIVERIES, (session_sid,)).fetchall())
        return [_delivery(*row) for row in rows]

    async def oldest_transition(self) -> float | None:
        """When the oldest kept transition was observed (epoch seconds); None when none is."""
        if not self._has_history:
            return None
        found = await self._read(
            lambda db: db.execute("SELECT min(observed_at) FROM transition").fetchone()
        )
        return None if found[0] is None else float(found[0])

    async def purge_transitions(self, *, before: float, limit: int) -> int:
        """Delete at most `limit` transitions observed before `before`, oldest first (a
        short transaction: polls commit in between batches)."""
        return await self._count(
            "DELETE FROM transition WHERE id IN (SELECT id FROM transition WHERE observed_at < ?"
            " ORDER BY observed_at LIMIT ?)",
            (before, limit),
        )


def _dump(value: Value) -> str:
    return json.dumps(wire_value(value))


def _load(name: str | None, text: str | None) -> Value:
    if text is None:
        return None
    value = json.loads(text)
    if name == Field.REVIEW_BY_DATE and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value  # type: ignore[no-any-return]  # a status string or a flag, as written


def _transition(*found: Any) -> Transition:
    event_id, sid, kind, observed, name, previous, current, message = found
    return Transition(
        event_id, sid, EventType(kind), datetime.fromtimestamp(observed, UTC),
        name, _load(name, previous), _load(name, current), message,
    )  # fmt: skip


def _delivery(*found: Any) -> Delivery:
    event_id, sink, kind, state, attempts, error, created, delivered, next_at = found
    pending = state == OutboxState.PENDING
    return Delivery(
        event_id, sink, kind, OutboxState(state), attempts, error,
        datetime.fromtimestamp(created, UTC), dt(delivered), dt(next_at) if pending else None,
    )  # fmt: skip


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _row(found: Sequence[Any]) -> SessionRow:
    (install, exam, sid, labels, source, status, required, reviewed, review_by, url,
     appointment, observed, overdue_since, last_alert, due_soon_for, missing, failures,
     last_poll, last_outcome) = found  # fmt: skip
    snapshot = None
    if observed is not None:
        snapshot = Snapshot(
            status, _flag(required), _flag(reviewed), dt(review_by), url, dt(appointment)
        )
    loaded = json.loads(labels)
    return SessionRow(
        key=SessionKey(install, exam, sid),
        labels=shared_labels(loaded) if loaded else NO_LABELS,
        source=source,
        snapshot=snapshot,
        review=ReviewState(dt(overdue_since), dt(last_alert), dt(due_soon_for)),
        missing=bool(missing),
        failures=failures or 0,
        last_poll_at=last_poll,
        last_outcome=last_outcome,
    )
