"""The poller's port on SQLite: sessions, their poll writes, outbox rows and transitions of
polls (`history.insert_events`), meta."""

from __future__ import annotations

import functools
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from monitor.core.context import SHARED_CONTEXTS, Context, shared_context
from monitor.core.instants import shared_instant
from monitor.core.keys import SessionKey
from monitor.core.rules import NO_REVIEW, ReviewState
from monitor.core.snapshot import Snapshot, compact_url
from monitor.store.base import PollRecord, SessionRecord
from monitor.store.ports import Deliveries
from monitor.store.sqlite.connection import Connection, Db, ts
from monitor.store.sqlite.history import insert_events

__all__ = ["Sessions"]


_LOAD = (
    "SELECT install_sid, exam_sid, session_sid, status, review_required, reviewed,"
    " review_by_date, url, version, digest, missing, failures, last_poll_at,"
    " overdue_since, last_overdue_alert, due_soon_for, observed_at, appointment_date,"
    " settled_since, escalated, context FROM session"
)
_NONE_TOUCHED: Mapping[str, float] = MappingProxyType({})
_CHUNK = 500
"""Session sids per query: under SQLite's host-parameter limit on every build."""


class Sessions(Connection):
    async def load(self, sids: Sequence[str] | None = None) -> list[SessionRecord]:
        """Every stored session, or those of `sids`. Row by row, not fetchall: 100,000 raw
        rows held beside their records would double a restart's peak memory."""

        def read(db: Db) -> list[SessionRecord]:
            if sids is None:
                return [_session_record(row) for row in db.execute(_LOAD)]
            found: list[SessionRecord] = []
            for at in range(0, len(sids), _CHUNK):
                chunk = sids[at : at + _CHUNK]
                where = f" WHERE session_sid IN ({','.join('?' * len(chunk))})"
                found += map(_session_record, db.execute(_LOAD + where, chunk))
            return found

        return await self._read(read)

    async def commit(
        self, records: Sequence[PollRecord], *, touched: Mapping[str, float] = _NONE_TOUCHED
    ) -> frozenset[str]:
        """Snapshots, review states and outbox rows of a batch of polls, in one transaction;
        `touched` are the poll times (by session sid) of polls that changed nothing else. The
        sids returned were fenced out (`_held`): nothing of theirs was written."""

        def write(db: Db) -> frozenset[str]:
            nonlocal records
            sids = itertools.chain((r.key.session_sid for r in records), touched)
            fenced = self._fence(db, sids)
            if fenced:
                records = [r for r in records if r.key.session_sid not in fenced]
            if touched:
                # Row by row from the mapping: thousands of (time, sid) tuples built up front were
                # the peak of a burst of unchanged polls.
                db.executemany(
                    "UPDATE session SET last_poll_at=?, last_outcome='ok' WHERE session_sid=?",
                    ((at, sid) for sid, at in touched.items() if sid not in fenced),
                )
            for record in records:
                if record.snapshot is not None:
                    _write_snapshot(db, record)
                else:
                    _write_failure(db, record)
                insert_events(db, record.deliveries, record.polled_at)
            return fenced

        return await self._write(write)

    def _fence(self, db: Db, sids: Iterable[str]) -> frozenset[str]:
        """Of `sids`, those this process may not write in the transaction under way: none
        here, as one process owns a SQLite file (its lock). The PostgreSQL store checks its
        shard leases, in the same transaction."""
        return frozenset()

    async def enqueue(self, deliveries: Deliveries, now: float) -> None:
        """Outbox rows (and transitions, for session events) of events that belong to no poll
        (e.g. api.auth_failed)."""
        await self._write(lambda db: insert_events(db, deliveries, now))

    async def get_meta(self, key: str) -> str | None:
        row = await self._read(
            lambda db: db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        )
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._count(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            " value=excluded.value",
            (key, value),
        )


def _write_snapshot(db: Db, r: PollRecord) -> None:
    s, review = r.snapshot, r.review or ReviewState()
    assert s is not None  # guarded by the caller; narrows the type
    db.execute(
        "INSERT INTO session (session_sid, install_sid, exam_sid, status, review_required,"
        " reviewed, review_by_date, url, payload, digest, version, overdue_since,"
        " last_overdue_alert, due_soon_for, missing, failures, last_poll_at, last_outcome,"
        " observed_at, appointment_date, settled_since, escalated, context)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,0,?,?,?,?,?,?,?)"
        " ON CONFLICT (session_sid) DO UPDATE SET status=excluded.status,"
        " review_required=excluded.review_required, reviewed=excluded.reviewed,"
        " review_by_date=excluded.review_by_date, url=excluded.url,"
        " payload=coalesce(excluded.payload, session.payload), digest=excluded.digest,"
        " version=excluded.version, overdue_since=excluded.overdue_since,"
        " last_overdue_alert=excluded.last_overdue_alert, due_soon_for=excluded.due_soon_for,"
        " missing=0, failures=0, last_poll_at=excluded.last_poll_at,"
        " last_outcome=excluded.last_outcome, observed_at=excluded.observed_at,"
        " appointment_date=excluded.appointment_date, settled_since=excluded.settled_since,"
        " escalated=excluded.escalated, context=excluded.context",
        (
            r.key.session_sid, r.key.install_sid, r.key.exam_sid, s.status,
            _flag(s.review_required), _flag(s.reviewed), ts(s.review_by_date), s.link(r.key),
            r.payload, r.digest, r.version, ts(review.overdue_since),
            ts(review.last_overdue_alert), ts(review.due_soon_for),
            r.polled_at, r.outcome, r.polled_at, ts(s.appointment), ts(r.settled_since),
            review.escalated,
            _context_text(s.context),
        ),
    )  # fmt: skip


def _write_failure(db: Db, r: PollRecord) -> None:
    # The last good snapshot stays; the review state may still move (overdue follows the
    # clock, not the API), so it is written when the poller passes one.
    review = r.review or ReviewState()
    db.execute(
        "INSERT INTO session (session_sid, install_sid, exam_sid, version, missing, failures,"
        " last_poll_at, last_outcome, overdue_since, last_overdue_alert, due_soon_for,"
        " settled_since, escalated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (session_sid) DO UPDATE SET version=excluded.version,"
        " missing=excluded.missing, failures=excluded.failures,"
        " last_poll_at=excluded.last_poll_at, last_outcome=excluded.last_outcome,"
        " overdue_since=excluded.overdue_since, last_overdue_alert=excluded.last_overdue_alert,"
        " due_soon_for=excluded.due_soon_for, settled_since=excluded.settled_since,"
        " escalated=excluded.escalated",
        (
            r.key.session_sid, r.key.install_sid, r.key.exam_sid, r.version,
            int(r.missing), r.failures, r.polled_at, r.outcome,
            ts(review.overdue_since), ts(review.last_overdue_alert), ts(review.due_soon_for),
            ts(r.settled_since), review.escalated,
        ),
    )  # fmt: skip


def _context_text(context: Context | None) -> str | None:
    kept = context.kept() if context is not None else None
    if kept is None:
        return None
    names = [kept.exam_title, kept.course, kept.install_name, kept.status_reason]
    return json.dumps(names, ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=SHARED_CONTEXTS)
def _context(text: str | None) -> Context | None:
    """One parse per distinct text: a restart reads 100,000 rows naming a few hundred exams."""
    if text is None:
        return None
    try:
        names = json.loads(text)
        exam, course, install, reason = (n if isinstance(n, str) else None for n in names)
    except (ValueError, TypeError):
        return None  # a names column is a convenience: never a reason to refuse a restore
    return shared_context(exam, course, install, reason)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _review(
    overdue_since: float | None,
    last: float | None,
    due_soon: float | None,
    escalated: int,
    when: Callable[[float | None], datetime | None],
) -> ReviewState:
    # Most sessions have no review under way: one shared state for all of them.
    if overdue_since is None and last is None and due_soon is None and not escalated:
        return NO_REVIEW
    return ReviewState(when(overdue_since), when(last), when(due_soon), escalated or 0)


class _Instants:
    """Stored instants as datetimes, one object per instant within a row, as the poll that
    wrote them shared them: an overdue spell's first alert is its start, a due-soon warning
    names the deadline. A snapshot's own instants are also shared across rows
    (`shared_instant`). 48 bytes a copy, across 100,000 restored sessions."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[float, datetime] = {}

    def __call__(self, value: float | None) -> datetime | None:
        return self._get(value, across=False)

    def shared(self, value: float | None) -> datetime | None:
        return self._get(value, across=True)

    def _get(self, value: float | None, *, across: bool) -> datetime | None:
        if value is None:
            return None
        found = self._seen.get(value)
        if found is None:
            found = datetime.fromtimestamp(value, UTC)
            self._seen[value] = found = shared_instant(found) if across else found
        return found


def _session_record(row: tuple[Any, ...]) -> SessionRecord:
    (install, exam, sid, status, required, reviewed, review_by, url, version, digest, missing,
     failures, last_poll, overdue_since, last_alert, due_soon_for, observed_at, appointment,
     settled_since, escalated, context) = row  # fmt: skip
    when = _Instants()
    snapshot = None
    if observed_at is not None:
        # A handful of statuses, installs and exams across 100,000 sessions: one copy each.
        status = sys.intern(status) if status else status
        snapshot = Snapshot(
            status,
            _bool(required),
            _bool(reviewed),
            when.shared(review_by),
            compact_url(url, sid),
            when.shared(appointment),
            _context(context),
        )
    return SessionRecord(
        key=SessionKey(sys.intern(install), sys.intern(exam), sid),
        snapshot=snapshot,
        review=_review(overdue_since, last_alert, due_soon_for, escalated, when),
        version=version,
        digest=digest,
        missing=bool(missing),
        failures=failures,
        last_poll_at=last_poll,
        settled_since=when(settled_since),
    )
