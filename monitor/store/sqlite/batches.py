"""The dispatcher's port for digest and quiet sinks on SQLite: a whole window's rows leased
at once and settled at once, rows held until a quiet window ends, and one-off quiet windows.

A digest is one delivery covering many rows: `claim_batch` leases them together, and
`settle_batch` marks them together (delivered, retried at one time, dead or given back) in one
transaction, fenced by the lease owner like a single row. A SIGKILL between the receiver's
200 and that commit re-sends the digest after restart (at least once), never loses a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.store.base import OutboxRow, QuietWindow
from monitor.store.sqlite.connection import Connection, Db
from monitor.store.sqlite.outbox import CRASHED, OUTBOX_COLUMNS, _row

__all__ = ["Batches"]

_FREE = "(lease_until IS NULL OR lease_until < ?)"
_BEHIND = (
    "NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state='pending' AND p.sink=o.sink"
    " AND p.session_sid=o.session_sid AND p.id < o.id AND (p.lease_until >= ?{not_due}))"
)
"""A row may go only with every earlier pending row of its session, or after them: none of
them leased elsewhere (in flight) or, unless forced, not due yet. So a session's later row is
never delivered before its earlier one, the rule `Outbox.claim` keeps for single rows; within
a batch they go in id order, in one message."""
_SETTLE = {
    "delivered": "state='delivered', delivered_at=?, last_error=NULL",
    "retry": "next_attempt_at=?, last_error=?",
    "dead": "state='dead', last_error=?",
    "unclaim": "attempts=CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, next_attempt_at=?",
}


def _later(a: str, b: str) -> str:
    return f"(CASE WHEN {a} >= {b} THEN {a} ELSE {b} END)"


class Batches(Connection):
    async def claim_batch(
        self,
        sink: str,
        *,
        now: float,
        window: float,
        owner: str,
        lease: float,
        limit: int,
        max_attempts: int,
        force: bool = False,
    ) -> tuple[list[OutboxRow], int]:
        """Lease every due row of the sink (up to `limit`, oldest first) once the earliest
        of them is due as a digest (`core.digest.due_at`); `force` (a probe of a sink that
        is down) takes the pending rows due or not. Returns the rows and how many rows that
        had used up every attempt were dead-lettered (crashed during delivery)."""

        def lease_rows(db: Db) -> tuple[list[Any], int]:
            dead = db.execute(
                "UPDATE outbox SET state='dead', last_error=?, lease_owner=NULL,"  # noqa: S608  # fixed fragments
                f" lease_until=NULL WHERE state='pending' AND sink=? AND attempts >= ? AND {_FREE}",
                (CRASHED, sink, max_attempts, now),
            ).rowcount
            behind = _BEHIND.format(not_due="" if force else " OR p.next_attempt_at > ?")
            blockers: tuple[Any, ...] = (now,) if force else (now, now)
            if not force:
                ready = db.execute(
                    f"SELECT 1 FROM outbox o WHERE state='pending' AND sink=? AND {_FREE}"  # noqa: S608  # fixed fragments
                    f" AND next_attempt_at <= ? AND created_at + ? <= ? AND {behind} LIMIT 1",
                    (sink, now, now, window, now, *blockers),
                ).fetchone()
                if ready is None:
                    return [], dead
            due = "" if force else " AND next_attempt_at <= ?"
            args: tuple[Any, ...] = (sink, now) if force else (sink, now, now)
            rows = db.execute(
                "UPDATE outbox SET lease_owner=?, lease_until=?, attempts=attempts+1"  # noqa: S608  # fixed fragments
                " WHERE id IN (SELECT id FROM outbox o WHERE state='pending' AND sink=?"
                f" AND {_FREE}{due} AND {behind} ORDER BY id LIMIT ?{self._skip_locked('o')})"
                f" RETURNING {OUTBOX_COLUMNS}",
                (owner, now + lease, *args, *blockers, limit),
            ).fetchall()
            return rows, dead

        rows, dead = await self._write(lease_rows)
        return sorted(map(_row, rows), key=lambda row: row.id), dead

    async def settle_batch(
        self,
        ids: Sequence[int],
        *,
        owner: str,
        how: str,
        at: float = 0.0,
        error: str = "",
    ) -> int:
        """Finish the leased rows of one digest message together; `how` is delivered (at =
        now), retry (at = next attempt), dead or unclaim (at = next attempt)."""
        assignments = _SETTLE[how]
        values: tuple[Any, ...] = {
            "delivered": (at,),
            "retry": (at, error[:500]),
            "dead": (error[:500],),
            "unclaim": (at,),
        }[how]

        def settle(db: Db) -> int:
            total = 0
            for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                total += db.execute(
                    f"UPDATE outbox SET {assignments}, lease_owner=NULL, lease_until=NULL"  # noqa: S608  # literals above
                    f" WHERE id IN ({marks}) AND lease_owner=? AND state='pending'",
                    (*values, *chunk, owner),
                ).rowcount
            return total

        return await self._write(settle)

    async def next_batch_due(self, sink: str, *, now: float, window: float) -> float | None:
        """When the sink's next digest is due (or a lease on its rows ends), read from each
        session's oldest pending row (the rows behind it go with it or after it); None if
        nothing is pending."""
        found = await self._read(
            lambda db: db.execute(
                # The latest of next attempt, window end and lease end, in the SQL both
                # stores read (PostgreSQL has no two-argument max, SQLite no greatest).
                f"SELECT min(CASE WHEN lease_until IS NOT NULL AND lease_until >= ?"  # noqa: S608  # fixed fragments
                f" THEN {_later(_later('next_attempt_at', 'created_at + ?'), 'lease_until')}"
                f" ELSE {_later('next_attempt_at', 'created_at + ?')} END)"
                " FROM outbox WHERE id IN (SELECT min(id) FROM outbox"
                "   WHERE state='pending' AND sink=? GROUP BY session_sid)",
                (now, *[window] * 6, sink),
            ).fetchone()[0]
        )
        return None if found is None else float(found)

    async def hold(self, sink: str, *, until: float) -> int:
        """Quiet: the sink's pending rows wait until `until` (never earlier than they would
        have); returns how many rows the sink now holds."""

        def held(db: Db) -> int:
            db.execute(
                "UPDATE outbox SET next_attempt_at=? WHERE state='pending' AND sink=?"
                " AND next_attempt_at < ? AND lease_owner IS NULL",
                (until, sink, until),
            )
            row = db.execute(
                "SELECT count(*) FROM outbox WHERE state='pending' AND sink=?", (sink,)
            ).fetchone()
            return int(row[0])

        return await self._write(held)

    async def quiet_windows(self, *, now: float) -> list[QuietWindow]:
        """One-off quiet windows that have not ended, soonest first."""
        rows = await self._read(
            lambda db: db.execute(
                "SELECT id, sink, start_at, end_at, reason FROM quiet_window WHERE end_at > ?"
                " ORDER BY start_at, id",
                (now,),
            ).fetchall()
        )
        return [QuietWindow(*row) for row in rows]

    async def add_quiet(
        self, sink: str, *, start: float, end: float, reason: str, now: float
    ) -> int:
        def insert(db: Db) -> int:
            db.execute("DELETE FROM quiet_window WHERE end_at <= ?", (now,))  # ended: gone
            (found,) = db.execute(
                "INSERT INTO quiet_window (sink, start_at, end_at, reason, created_at)"
                " VALUES (?,?,?,?,?) RETURNING id",
                (sink, start, end, reason[:200], now),
            ).fetchone()
            return int(found)

        return await self._write(insert)

    async def remove_quiet(self, window_id: int) -> bool:
        return await self._count("DELETE FROM quiet_window WHERE id=?", (window_id,)) > 0
