"""The embedded state store: one SQLite file in WAL mode, one writer thread, locked by itself.

Every call runs a whole transaction on a dedicated thread, so the event loop never blocks on
disk and there is exactly one writer (SQLite allows no more).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import structlog

from monitor.core.events import Event
from monitor.core.keys import SessionKey
from monitor.core.rules import ReviewState
from monitor.core.snapshot import Snapshot
from monitor.store import statefile
from monitor.store.base import (
    OutboxEntry,
    OutboxRow,
    OutboxStats,
    PollRecord,
    SessionRecord,
    SinkState,
    StateFileError,
)

__all__ = ["SharedSqliteStore", "SqliteStore"]

T = TypeVar("T")
log = structlog.get_logger("spmon.store")
CRASHED = "crashed during delivery"
"""Why a row whose every attempt was started and none came back is dead-lettered."""
_OUTBOX_COLUMNS = (
    "id, event_id, sink, session_sid, payload, created_at, attempts, state, last_error"
)
_ENTRY_COLUMNS = (
    "id, event_id, sink, session_sid, event_type, state, attempts, created_at, next_attempt_at,"
    " last_error"
)


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


class SqliteStore:
    """`async with SqliteStore(path) as store:` opens, locks and migrates; exit closes."""

    exclusive = True
    """Holds the single-instance lock, so leases left in the file belong to no live process."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spmon-sqlite")
        self._db: sqlite3.Connection | None = None
        self._fd: int | None = None
        self._deployment = ""

    async def __aenter__(self) -> Self:
        try:
            await self._run(self._start)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is None:  # already closed
            return
        # Shielded: a cancelled shutdown must still checkpoint the WAL and free the lock.
        await asyncio.shield(self._run(self._close))
        self._executor.shutdown(wait=True)

    @property
    def deployment_id(self) -> str:
        """128 random bits made with the state file: every event id is scoped to it."""
        if not self._deployment:
            raise RuntimeError("store is not open")
        return self._deployment

    # -- lifecycle -------------------------------------------------------------------------

    def _start(self) -> None:
        try:
            real = statefile.resolve(self.path)
            if not real.exists():
                statefile.create(self.path, real, self._prepare)
            self._fd = statefile.open_locked(self.path, real, lock=self.exclusive)
        except OSError as exc:  # what the checks did not foresee is still one line
            raise StateFileError(self.path, statefile.describe(exc)) from None
        try:
            self._open(real)
        except BaseException as exc:
            self._close()
            if isinstance(exc, sqlite3.Error | OSError):
                reason = f"cannot be opened: {statefile.describe(exc)}"
                raise StateFileError(self.path, reason) from None
            raise

    def _open(self, real: Path) -> None:
        db = sqlite3.connect(real, isolation_level=None, check_same_thread=False)
        self._db = db
        db.execute("PRAGMA busy_timeout=5000")
        statefile.check_schema(self.path, db, len(_scripts()))  # before anything writes
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        deployment = self._prepare(db)
        if self.exclusive:
            # We hold the lock on the file: whoever leased these rows is gone. Their attempt
            # stays counted (the delivery may be what killed it).
            with self._tx(db):
                db.execute(
                    "UPDATE outbox SET lease_owner=NULL, lease_until=NULL WHERE state='pending'"
                    " AND lease_owner IS NOT NULL"
                )
        self._deployment = deployment  # open: from here on, closing checkpoints the WAL

    def _prepare(self, db: sqlite3.Connection) -> str:
        """Migrate, and give the store its deployment id if it has none yet; return it."""
        self._migrate(db)
        with self._tx(db):
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('deployment_id', ?)",
                (secrets.token_hex(16),),
            )
            row = db.execute("SELECT value FROM meta WHERE key='deployment_id'").fetchone()
        return str(row[0])

    def _migrate(self, db: sqlite3.Connection) -> None:
        current = db.execute("PRAGMA user_version").fetchone()[0]
        for number, sql in enumerate(_scripts(), start=1):
            if number > current:
                with self._tx(db):
                    for statement in sql.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version={number}")

    def _close(self) -> None:
        if self._db is not None:
            if self._deployment:  # opened all the way; a refused file is closed untouched
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None
        if self._fd is not None:  # only now: closing it earlier would drop SQLite's locks
            os.close(self._fd)  # and with it the flock
            self._fd = None

    @staticmethod
    @contextlib.contextmanager
    def _tx(db: sqlite3.Connection) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front: a deferred BEGIN that reads then writes can
        # fail with SQLITE_BUSY despite busy_timeout.
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    # -- sessions --------------------------------------------------------------------------

    async def load(self) -> list[SessionRecord]:
        return await self._run(self._load)

    def _load(self) -> list[SessionRecord]:
        rows = self.db.execute(
            "SELECT install_sid, exam_sid, session_sid, status, review_required, reviewed,"
            " review_by_date, url, version, digest, missing, failures, last_poll_at,"
            " overdue_since, last_overdue_alert, due_soon_for, observed_at FROM session"
        )
        return [_session_record(row) for row in rows]

    async def commit(
        self, records: Sequence[PollRecord], *, touched: Sequence[tuple[float, str]] = ()
    ) -> None:
        """Snapshots, review states and outbox rows of a batch of polls, in one transaction;
        `touched` are (poll time, session sid) of polls that changed nothing else."""
        await self._run(self._commit, records, touched)

    def _commit(self, records: Sequence[PollRecord], touched: Sequence[tuple[float, str]]) -> None:
        db = self.db
        with self._tx(db):
            if touched:
                db.executemany(
                    "UPDATE session SET last_poll_at=?, last_outcome='ok' WHERE session_sid=?",
                    touched,
                )
            for record in records:
                if record.snapshot is not None:
                    self._write_snapshot(db, record)
                else:
                    self._write_failure(db, record)
                self._insert_outbox(db, record.deliveries, record.polled_at)

    def _write_snapshot(self, db: sqlite3.Connection, r: PollRecord) -> None:
        s, review = r.snapshot, r.review or ReviewState()
        assert s is not None  # guarded by the caller; narrows the type
        db.execute(
            "INSERT INTO session (session_sid, install_sid, exam_sid, status, review_required,"
            " reviewed, review_by_date, url, payload, digest, version, overdue_since,"
            " last_overdue_alert, due_soon_for, missing, failures, last_poll_at, last_outcome,"
            " observed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,0,?,?,?)"
            " ON CONFLICT (session_sid) DO UPDATE SET status=excluded.status,"
            " review_required=excluded.review_required, reviewed=excluded.reviewed,"
            " review_by_date=excluded.review_by_date, url=excluded.url,"
            " payload=coalesce(excluded.payload, payload), digest=excluded.digest,"
            " version=excluded.version, overdue_since=excluded.overdue_since,"
            " last_overdue_alert=excluded.last_overdue_alert, due_soon_for=excluded.due_soon_for,"
            " missing=0, failures=0, last_poll_at=excluded.last_poll_at,"
            " last_outcome=excluded.last_outcome, observed_at=excluded.observed_at",
            (
                r.key.session_sid, r.key.install_sid, r.key.exam_sid, s.status,
                _flag(s.review_required), _flag(s.reviewed), _ts(s.review_by_date), s.url,
                r.payload, r.digest, r.version, _ts(review.overdue_since),
                _ts(review.last_overdue_alert), _ts(review.due_soon_for),
                r.polled_at, r.outcome, r.polled_at,
            ),
        )  # fmt: skip

    def _write_failure(self, db: sqlite3.Connection, r: PollRecord) -> None:
        # The last good snapshot stays; the review state may still move (overdue follows the
        # clock, not the API), so it is written when the poller passes one.
        review = r.review or ReviewState()
        db.execute(
            "INSERT INTO session (session_sid, install_sid, exam_sid, version, missing, failures,"
            " last_poll_at, last_outcome, overdue_since, last_overdue_alert, due_soon_for)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (session_sid) DO UPDATE SET version=excluded.version,"
            " missing=excluded.missing, failures=excluded.failures,"
            " last_poll_at=excluded.last_poll_at, last_outcome=excluded.last_outcome,"
            " overdue_since=excluded.overdue_since, last_overdue_alert=excluded.last_overdue_alert,"
            " due_soon_for=excluded.due_soon_for",
            (
                r.key.session_sid, r.key.install_sid, r.key.exam_sid, r.version,
                int(r.missing), r.failures, r.polled_at, r.outcome,
                _ts(review.overdue_since), _ts(review.last_overdue_alert), _ts(review.due_soon_for),
            ),
        )  # fmt: skip

    # -- outbox ----------------------------------------------------------------------------

    async def enqueue(self, deliveries: Sequence[tuple[Event, Sequence[str]]], now: float) -> None:
        """Outbox rows for events that belong to no poll (e.g. api.auth_failed)."""
        await self._run(self._enqueue, deliveries, now)

    def _enqueue(self, deliveries: Sequence[tuple[Event, Sequence[str]]], now: float) -> None:
        with self._tx(self.db):
            self._insert_outbox(self.db, deliveries, now)

    @staticmethod
    def _insert_outbox(
        db: sqlite3.Connection, deliveries: Sequence[tuple[Event, Sequence[str]]], now: float
    ) -> None:
        import json

        for event, sinks in deliveries:
            body = json.dumps(event.to_wire(), separators=(",", ":")).encode()
            session = event.key.session_sid if event.key else ""
            db.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, sink, session_sid, event_type, payload,"
                " created_at, next_attempt_at) VALUES (?,?,?,?,?,?,?)",
                [(event.id, sink, session, str(event.type), body, now, now) for sink in sinks],
            )

    async def mark_delivered(self, row_id: int, *, owner: str, now: float) -> bool:
        return await self._fenced(
            "state='delivered', delivered_at=?, last_error=NULL", (now,), row_id, owner
        )

    async def mark_retry(
        self, row_id: int, *, owner: str, next_attempt_at: float, error: str
    ) -> bool:
        return await self._fenced(
            "next_attempt_at=?, last_error=?", (next_attempt_at, error[:500]), row_id, owner
        )

    async def mark_dead(self, row_id: int, *, owner: str, error: str) -> bool:
        return await self._fenced("state='dead', last_error=?", (error[:500],), row_id, owner)

    async def _fenced(
        self, assignments: str, args: tuple[Any, ...], row_id: int, owner: str
    ) -> bool:
        # Only the current lease holder may finish a row: a worker that outlived its lease must
        # not overwrite what its successor did.
        sql = (
            f"UPDATE outbox SET {assignments}, lease_owner=NULL, lease_until=NULL"  # noqa: S608  # assignments are literals above
            " WHERE id=? AND lease_owner=? AND state='pending'"
        )
        return await self._run(self._write, sql, (*args, row_id, owner))

    def _write(self, sql: str, args: tuple[Any, ...]) -> bool:
        with self._tx(self.db):
            return self.db.execute(sql, args).rowcount > 0

    async def release(self, owner: str) -> None:
        """Give back leases at shutdown so the next start delivers at once, not after expiry.
        The attempt they counted is refunded: it never reached the sink's answer."""
        await self._run(
            self._write,
            "UPDATE outbox SET lease_owner=NULL, lease_until=NULL, attempts=max(attempts-1, 0)"
            " WHERE lease_owner=? AND state='pending'",
            (owner,),
        )

    async def stats(self) -> OutboxStats:
        return await self._run(self._stats)

    def _stats(self) -> OutboxStats:
        pending: dict[str, int] = {}
        dead: dict[str, int] = {}
        for sink, state, count in self.db.execute(
            "SELECT sink, state, count(*) FROM outbox WHERE state IN ('pending','dead')"
            " GROUP BY sink, state"
        ):
            (pending if state == "pending" else dead)[sink] = count
        oldest = self.db.execute(
            "SELECT min(created_at) FROM outbox WHERE state='pending'"
        ).fetchone()[0]
        return OutboxStats(pending, dead, oldest)

    async def rows(self, *, state: str | None, limit: int) -> list[OutboxRow]:
        return await self._run(self._rows, state, limit)

    def _rows(self, state: str | None, limit: int) -> list[OutboxRow]:
        where, args = ("WHERE state=?", (state,)) if state else ("", ())
        cursor = self.db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox {where} ORDER BY id LIMIT ?",  # noqa: S608  # fixed fragments
            (*args, limit),
        )
        return [OutboxRow(*row) for row in cursor]

    async def requeue_dead(self, *, sink: str | None, now: float) -> int:
        where = " AND sink=?" if sink else ""
        return await self._run(
            self._count,
            "UPDATE outbox SET state='pending', attempts=0, next_attempt_at=?,"  # noqa: S608  # fixed fragments
            f" lease_owner=NULL, lease_until=NULL WHERE state='dead'{where}",
            (now, sink) if sink else (now,),
        )

    async def purge(self, *, state: str, sink: str | None) -> int:
        where = " AND sink=?" if sink else ""
        return await self._run(
            self._count,
            f"DELETE FROM outbox WHERE state=?{where}",  # noqa: S608  # fixed fragments
            (state, sink) if sink else (state,),
        )

    def _count(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._tx(self.db):
            return self.db.execute(sql, args).rowcount

    # -- delivery: pacing, alert state, disabled sinks, operator commands --------------------

    async def unclaim(self, row_id: int, *, owner: str, next_attempt_at: float) -> bool:
        """Give one claimed row back untried (its sink is paused): the attempt is refunded."""
        return await self._run(
            self._write,
            "UPDATE outbox SET lease_owner=NULL, lease_until=NULL, attempts=max(attempts-1, 0),"
            " next_attempt_at=? WHERE id=? AND lease_owner=? AND state='pending'",
            (next_attempt_at, row_id, owner),
        )

    async def claim(
        self,
        sink: str,
        *,
        now: float,
        limit: int,
        owner: str,
        lease: float,
        max_attempts: int | None = None,
        on_dead: Callable[[], object] = lambda: None,
    ) -> list[OutboxRow]:
        """Lease due rows of one sink: only the oldest pending row of each session, so a
        session's alerts reach a sink in the order they happened. The query walks pending rows
        in id order and stops at `limit`, so its cost follows `limit`, not the backlog.

        attempts counts at claim, and a row that already had `max_attempts` is dead-lettered
        instead of claimed: its last attempt never came back, so it probably killed the
        process, and retrying it on every start would kill every start. `on_dead` is called
        once for each."""
        rows, dead = await self._run(self._claim, sink, now, limit, owner, lease, max_attempts)
        for event_id, attempts in dead:
            on_dead()
            log.error(
                "delivery.dead_lettered",
                sink=sink,
                event_id=event_id,
                attempt=attempts,
                reason=CRASHED,
                hint=f"kept in the store; `spmon outbox retry --sink {sink}` re-sends it",
            )
        return rows

    def _claim(
        self,
        sink: str,
        now: float,
        limit: int,
        owner: str,
        lease: float,
        max_attempts: int | None,
    ) -> tuple[list[OutboxRow], list[tuple[str, int]]]:
        with self._tx(self.db):
            dead: list[tuple[str, int]] = []
            if max_attempts is not None:
                dead = self.db.execute(
                    "UPDATE outbox SET state='dead', last_error=?, lease_owner=NULL,"
                    " lease_until=NULL WHERE state='pending' AND sink=? AND attempts >= ?"
                    " AND (lease_until IS NULL OR lease_until < ?) RETURNING event_id, attempts",
                    (CRASHED, sink, max_attempts, now),
                ).fetchall()
            rows = self.db.execute(
                "UPDATE outbox SET lease_owner=?, lease_until=?, attempts=attempts+1"  # noqa: S608  # fixed fragments
                " WHERE id IN (SELECT o.id FROM outbox o"
                "   WHERE o.state='pending' AND o.sink=? AND o.next_attempt_at <= ?"
                "   AND (o.lease_until IS NULL OR o.lease_until < ?)"
                "   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state='pending'"
                "     AND p.sink=o.sink AND p.session_sid=o.session_sid AND p.id < o.id)"
                "   ORDER BY o.id LIMIT ?)"
                f" RETURNING {_OUTBOX_COLUMNS}",
                (owner, now + lease, sink, now, now, limit),
            ).fetchall()
        claimed = sorted((OutboxRow(*row) for row in rows), key=lambda row: row.id)
        return claimed, [(str(event_id), int(attempts)) for event_id, attempts in dead]

    async def claim_probe(
        self, sink: str, *, now: float, owner: str, lease: float
    ) -> tuple[OutboxRow, float] | None:
        """Lease the sink's pending row that is due soonest, due or not, with when it was due:
        one probe of a sink that is down. Still a session's oldest row, so order holds."""
        return await self._run(self._claim_probe, sink, now, owner, lease)

    def _claim_probe(
        self, sink: str, now: float, owner: str, lease: float
    ) -> tuple[OutboxRow, float] | None:
        with self._tx(self.db):
            found = self.db.execute(
                "SELECT o.id, o.next_attempt_at FROM (SELECT min(id) AS head FROM outbox"
                "   WHERE state='pending' AND sink=? GROUP BY session_sid) AS heads"
                " JOIN outbox o ON o.id = heads.head"
                " WHERE o.lease_until IS NULL OR o.lease_until < ?"
                " ORDER BY o.next_attempt_at, o.id LIMIT 1",
                (sink, now),
            ).fetchone()
            if found is None:
                return None
            row = self.db.execute(
                "UPDATE outbox SET lease_owner=?, lease_until=?, attempts=attempts+1 WHERE id=?"  # noqa: S608  # fixed fragments
                f" RETURNING {_OUTBOX_COLUMNS}",
                (owner, now + lease, found[0]),
            ).fetchone()
        return OutboxRow(*row), float(found[1])

    async def expedite(self, sink: str, *, now: float) -> int:
        """A sink came back: rows backed off while it was down are due now, not in 2 hours."""
        return await self._run(
            self._count,
            "UPDATE outbox SET next_attempt_at=? WHERE sink=? AND state='pending'"
            " AND next_attempt_at > ? AND lease_owner IS NULL",
            (now, sink, now),
        )

    async def firing(self, sink: str, *, fire: str, resolve: str) -> list[OutboxRow]:
        """Per session, the latest row of type `fire` or `resolve` for `sink`, where that row
        is a `fire`: the alerts that are still on (derived, so restart-safe). Dead rows count:
        a resolve that could not be delivered still ends the alert (Alertmanager lets it expire
        after the hold instead of being re-fired forever), and a dead fire is still true."""
        return await self._run(self._firing, sink, fire, resolve)

    def _firing(self, sink: str, fire: str, resolve: str) -> list[OutboxRow]:
        cursor = self.db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id IN (SELECT max(id) FROM outbox"  # noqa: S608  # fixed fragments
            " WHERE sink=? AND event_type IN (?, ?) GROUP BY session_sid)"
            " AND event_type=? ORDER BY id",
            (sink, fire, resolve, fire),
        )
        return [OutboxRow(*row) for row in cursor]

    async def sink_states(self) -> dict[str, SinkState]:
        rows = await self._run(
            lambda: self.db.execute(
                "SELECT sink, fingerprint, disabled_at, reason FROM sink_state"
            ).fetchall()
        )
        return {row[0]: SinkState(*row) for row in rows}

    async def disable_sink(self, sink: str, *, fingerprint: str, reason: str, now: float) -> None:
        await self._run(
            self._write,
            "INSERT INTO sink_state (sink, fingerprint, disabled_at, reason) VALUES (?,?,?,?)"
            " ON CONFLICT (sink) DO UPDATE SET fingerprint=excluded.fingerprint,"
            " disabled_at=excluded.disabled_at, reason=excluded.reason",
            (sink, fingerprint, now, reason[:500]),
        )

    async def enable_sink(self, sink: str) -> bool:
        return await self._run(self._write, "DELETE FROM sink_state WHERE sink=?", (sink,))

    async def entries(
        self, *, state: str | None, sink: str | None, limit: int
    ) -> list[OutboxEntry]:
        """Outbox rows for people: oldest first, filtered by state and sink."""
        return await self._run(self._entries, state, sink, limit)

    def _entries(self, state: str | None, sink: str | None, limit: int) -> list[OutboxEntry]:
        where, args = _filters(state=state, sink=sink)
        cursor = self.db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM outbox {where} ORDER BY id LIMIT ?",  # noqa: S608  # fixed fragments
            (*args, limit),
        )
        return [OutboxEntry(*row) for row in cursor]

    async def requeue_rows(self, ids: Sequence[int], *, now: float) -> int:
        """Dead rows by id back to pending with a fresh schedule (same event id)."""
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        return await self._run(
            self._count,
            "UPDATE outbox SET state='pending', attempts=0, next_attempt_at=?, lease_owner=NULL,"  # noqa: S608  # placeholders only
            f" lease_until=NULL WHERE state='dead' AND id IN ({marks})",
            (now, *ids),
        )

    async def purge_settled(
        self,
        *,
        state: str,
        sink: str | None,
        before: float | None,
        keep: Sequence[str],
        limit: int | None = None,
    ) -> int:
        """Delete delivered or dead rows, except each session's latest row of the `keep` types
        per sink: the resend loop reads which alerts are firing from exactly those rows. With
        `limit`, at most that many (a short transaction: polls commit in between)."""
        if state not in ("delivered", "dead"):
            raise ValueError("only delivered or dead rows can be purged")
        where, args = _filters(state=state, sink=sink)
        if before is not None:
            where, args = f"{where} AND created_at < ?", (*args, before)
        marks = ",".join("?" * len(keep)) or "NULL"
        chosen = (
            f"SELECT id FROM outbox {where} AND id NOT IN (SELECT max(id) FROM outbox"  # noqa: S608  # fixed fragments
            f" WHERE event_type IN ({marks}) AND state != 'dead' GROUP BY sink, session_sid)"
        )
        args = (*args, *keep)
        if limit is not None:
            chosen, args = f"{chosen} ORDER BY id LIMIT ?", (*args, limit)
        sql = f"DELETE FROM outbox WHERE id IN ({chosen})"  # noqa: S608  # fixed fragments
        return await self._run(self._count, sql, args)

    # -- misc ------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._run(
            lambda: self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        )
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(
            self._write,
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            " value=excluded.value",
            (key, value),
        )

    async def next_due(self, sink: str, *, now: float) -> float | None:
        """When the sink's next claimable row falls due (a session's oldest pending row, once
        any lease on it ends), or None with nothing pending: an idle dispatcher sleeps until
        exactly then instead of polling."""
        return await self._run(self._next_due, sink, now)

    def _next_due(self, sink: str, now: float) -> float | None:
        found = self.db.execute(
            "SELECT min(CASE WHEN o.lease_until IS NOT NULL AND o.lease_until >= ?"
            "   THEN max(o.next_attempt_at, o.lease_until) ELSE o.next_attempt_at END)"
            " FROM (SELECT min(id) AS head FROM outbox WHERE state='pending' AND sink=?"
            "   GROUP BY session_sid) AS heads JOIN outbox o ON o.id = heads.head",
            (now, sink),
        ).fetchone()[0]
        return None if found is None else float(found)

    async def make_due(self, *, sink: str | None, now: float) -> int:
        """`spmon outbox retry --pending`: pending rows (of one sink, or all) that wait for a
        later attempt are due now. Schedules and attempts are kept; rows in flight are left
        to their delivery; per-session order still holds (claim hands out heads only)."""
        where = " AND sink=?" if sink else ""
        return await self._run(
            self._count,
            "UPDATE outbox SET next_attempt_at=? WHERE state='pending' AND next_attempt_at > ?"  # noqa: S608  # fixed fragments
            f" AND (lease_until IS NULL OR lease_until < ?){where}",
            (now, now, now, sink) if sink else (now, now, now),
        )

    async def ping(self) -> None:
        await self._run(lambda: self.db.execute("SELECT 1").fetchone())


@functools.cache
def _scripts() -> tuple[str, ...]:
    """The schema migrations, in order; `PRAGMA user_version` counts those applied."""
    found = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in resources.files("monitor.store").joinpath("schema").iterdir()
        if entry.name.endswith(".sql")
    )
    return tuple(sql for _, sql in found)


def _filters(*, state: str | None, sink: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses = [(clause, value) for clause, value in (("state=?", state), ("sink=?", sink)) if value]
    if not clauses:
        return "WHERE 1=1", ()
    return "WHERE " + " AND ".join(c for c, _ in clauses), tuple(v for _, v in clauses)


class SharedSqliteStore(SqliteStore):
    """The same file opened *beside* a running service, for operator commands (`spmon outbox`):
    no process lock, since SQLite's own locking (WAL, BEGIN IMMEDIATE, busy_timeout) already
    serialises the few writes these commands make against the service's. Not holding the
    lock, it never releases leases: they may be a running service's."""

    exclusive = False


def _session_record(row: tuple[Any, ...]) -> SessionRecord:
    (install, exam, sid, status, required, reviewed, review_by, url, version, digest, missing,
     failures, last_poll, overdue_since, last_alert, due_soon_for, observed_at) = row  # fmt: skip
    snapshot = None
    if observed_at is not None:
        snapshot = Snapshot(status, _bool(required), _bool(reviewed), _dt(review_by), url)
    return SessionRecord(
        key=SessionKey(install, exam, sid),
        snapshot=snapshot,
        review=ReviewState(_dt(overdue_since), _dt(last_alert), _dt(due_soon_for)),
        version=version,
        digest=digest,
        missing=bool(missing),
        failures=failures,
        last_poll_at=last_poll,
    )
