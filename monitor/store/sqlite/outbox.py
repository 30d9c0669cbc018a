"""The dispatcher's port on SQLite: leases on due rows, fenced outcomes, sink states."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from monitor.core.outbox import OutboxState
from monitor.store.base import OutboxRow, OutboxStats, SinkState
from monitor.store.sqlite.connection import Connection, Db

__all__ = ["CRASHED", "OUTBOX_COLUMNS", "Outbox"]

log = structlog.get_logger("spmon.store")
CRASHED = "crashed during delivery"
"""Why a row whose every attempt was started and none came back is dead-lettered."""
_REFUND = "attempts=CASE WHEN attempts > 0 THEN attempts-1 ELSE 0 END"
"""An attempt given back (max(attempts-1, 0), spelled so PostgreSQL reads it too)."""
OUTBOX_COLUMNS = "id, event_id, sink, session_sid, payload, created_at, attempts, state, last_error"


class Outbox(Connection):
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

        def lease_rows(db: Db) -> tuple[list[Any], list[Any]]:
            dead: list[Any] = []
            if max_attempts is not None:
                dead = db.execute(
                    "UPDATE outbox SET state='dead', last_error=?, lease_owner=NULL,"
                    " lease_until=NULL WHERE state='pending' AND sink=? AND attempts >= ?"
                    " AND (lease_until IS NULL OR lease_until < ?) RETURNING event_id, attempts",
                    (CRASHED, sink, max_attempts, now),
                ).fetchall()
            rows = db.execute(
                "UPDATE outbox SET lease_owner=?, lease_until=?, attempts=attempts+1"  # noqa: S608  # fixed fragments
                " WHERE id IN (SELECT o.id FROM outbox o"
                "   WHERE o.state='pending' AND o.sink=? AND o.next_attempt_at <= ?"
                "   AND (o.lease_until IS NULL OR o.lease_until < ?)"
                "   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state='pending'"
                "     AND p.sink=o.sink AND p.session_sid=o.session_sid AND p.id < o.id)"
                f"   ORDER BY o.id LIMIT ?{self._skip_locked('o')})"
                f" RETURNING {OUTBOX_COLUMNS}",
                (owner, now + lease, sink, now, now, limit),
            ).fetchall()
            return rows, dead

        rows, dead = await self._write(lease_rows)
        for event_id, attempts in dead:
            on_dead()
            log.error(
                "delivery.dead_lettered",
                sink=sink,
                event_id=str(event_id),
                attempt=int(attempts),
                reason=CRASHED,
                hint=f"kept in the store; `spmon outbox retry --sink {sink}` re-sends it",
            )
        return sorted(map(_row, rows), key=lambda row: row.id)

    async def claim_probe(
        self, sink: str, *, now: float, owner: str, lease: float
    ) -> tuple[OutboxRow, float] | None:
        """Lease the sink's pending row that is due soonest, due or not, with when it was due:
        one probe of a sink that is down. Still a session's oldest row, so order holds."""

        def lease_head(db: Db) -> tuple[OutboxRow, float] | None:
            found = db.execute(
                "SELECT o.id, o.next_attempt_at FROM (SELECT min(id) AS head FROM outbox"  # noqa: S608  # fixed fragments
                "   WHERE state='pending' AND sink=? GROUP BY session_sid) AS heads"
                " JOIN outbox o ON o.id = heads.head"
                " WHERE o.lease_until IS NULL OR o.lease_until < ?"
                f" ORDER BY o.next_attempt_at, o.id LIMIT 1{self._skip_locked('o')}",
                (sink, now),
            ).fetchone()
            if found is None:
                return None
            row = db.execute(
                "UPDATE outbox SET lease_owner=?, lease_until=?, attempts=attempts+1 WHERE id=?"  # noqa: S608  # fixed fragments
                f" RETURNING {OUTBOX_COLUMNS}",
                (owner, now + lease, found[0]),
            ).fetchone()
            return _row(row), float(found[1])

        return await self._write(lease_head)

    async def unclaim(self, row_id: int, *, owner: str, next_attempt_at: float) -> bool:
        """Give one claimed row back untried (its sink is paused): the attempt is refunded."""
        return await self._fenced(
            f"{_REFUND}, next_attempt_at=?", (next_attempt_at,), row_id, owner
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
        return await self._count(sql, (*args, row_id, owner)) > 0

    async def release(self, owner: str) -> None:
        """Give back leases at shutdown so the next start delivers at once, not after expiry.
        The attempt they counted is refunded: it never reached the sink's answer."""
        await self._count(
            f"UPDATE outbox SET lease_owner=NULL, lease_until=NULL, {_REFUND}"  # noqa: S608  # a literal
            " WHERE lease_owner=? AND state='pending'",
            (owner,),
        )

    async def expedite(self, sink: str, *, now: float) -> int:
        """A sink came back: rows backed off while it was down are due now, not in 2 hours."""
        return await self._count(
            "UPDATE outbox SET next_attempt_at=? WHERE sink=? AND state='pending'"
            " AND next_attempt_at > ? AND lease_owner IS NULL",
            (now, sink, now),
        )

    async def next_due(self, sink: str, *, now: float) -> float | None:
        """When the sink's next claimable row falls due (a session's oldest pending row, once
        any lease on it ends), or None with nothing pending: an idle dispatcher sleeps until
        exactly then instead of polling."""
        found = await self._read(
            lambda db: db.execute(
                "SELECT min(CASE WHEN o.lease_until IS NOT NULL AND o.lease_until >= ?"
                "   THEN CASE WHEN o.lease_until > o.next_attempt_at THEN o.lease_until"
                "   ELSE o.next_attempt_at END ELSE o.next_attempt_at END)"
                " FROM (SELECT min(id) AS head FROM outbox WHERE state='pending' AND sink=?"
                "   GROUP BY session_sid) AS heads JOIN outbox o ON o.id = heads.head",
                (now, sink),
            ).fetchone()[0]
        )
        return None if found is None else float(found)

    async def firing(self, sink: str, *, fire: str, resolve: str) -> list[OutboxRow]:
        """Per session, the latest row of type `fire` or `resolve` for `sink`, where that row
        is a `fire`: the alerts that are still on (derived, so restart-safe). Dead rows count:
        a resolve that could not be delivered still ends the alert (Alertmanager lets it expire
        after the hold instead of being re-fired forever), and a dead fire is still true."""
        rows = await self._read(
            lambda db: db.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id IN (SELECT max(id) FROM outbox"  # noqa: S608  # fixed fragments
                " WHERE sink=? AND event_type IN (?, ?) GROUP BY session_sid)"
                " AND event_type=? ORDER BY id",
                (sink, fire, resolve, fire),
            ).fetchall()
        )
        return [_row(row) for row in rows]

    async def sink_states(self) -> dict[str, SinkState]:
        rows = await self._read(
            lambda db: db.execute(
                "SELECT sink, fingerprint, disabled_at, reason FROM sink_state"
            ).fetchall()
        )
        return {row[0]: SinkState(*row) for row in rows}

    async def disable_sink(self, sink: str, *, fingerprint: str, reason: str, now: float) -> None:
        await self._count(
            "INSERT INTO sink_state (sink, fingerprint, disabled_at, reason) VALUES (?,?,?,?)"
            " ON CONFLICT (sink) DO UPDATE SET fingerprint=excluded.fingerprint,"
            " disabled_at=excluded.disabled_at, reason=excluded.reason",
            (sink, fingerprint, now, reason[:500]),
        )

    async def enable_sink(self, sink: str) -> bool:
        return await self._count("DELETE FROM sink_state WHERE sink=?", (sink,)) > 0

    async def stats(self) -> OutboxStats:
        def count(db: Db) -> OutboxStats:
            pending: dict[str, int] = {}
            dead: dict[str, int] = {}
            for sink, state, n in db.execute(
                "SELECT sink, state, count(*) FROM outbox WHERE state IN ('pending','dead')"
                " GROUP BY sink, state"
            ):
                (pending if state == OutboxState.PENDING else dead)[sink] = n
            oldest = db.execute(
                "SELECT min(created_at) FROM outbox WHERE state='pending'"
            ).fetchone()[0]
            return OutboxStats(pending, dead, oldest)

        return await self._read(count)


def _row(found: Sequence[Any]) -> OutboxRow:
    """A row of OUTBOX_COLUMNS, its state typed."""
    row_id, event_id, sink, session_sid, payload, created_at, attempts, state, last_error = found
    return OutboxRow(
        row_id,
        event_id,
        sink,
        session_sid,
        payload,
        created_at,
        attempts,
        OutboxState(state),
        last_error,
    )
