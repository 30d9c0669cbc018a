"""The operators' port on SQLite (`spmon outbox …`, retention): read, re-queue, purge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.core.outbox import SETTLED, OutboxState
from monitor.store.base import OutboxEntry
from monitor.store.sqlite.connection import Connection

__all__ = ["Admin"]

_ENTRY_COLUMNS = (
    "id, event_id, sink, session_sid, event_type, state, attempts, created_at, next_attempt_at,"
    " last_error"
)


class Admin(Connection):
    async def entries(
        self, *, state: OutboxState | None, sink: str | None, limit: int
    ) -> list[OutboxEntry]:
        """Outbox rows for people: oldest first, filtered by state and sink."""
        where, args = _filters(state=state, sink=sink)
        rows = await self._read(
            lambda db: db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM outbox {where} ORDER BY id LIMIT ?",  # noqa: S608  # fixed fragments
                (*args, limit),
            ).fetchall()
        )
        return [_entry(*row) for row in rows]

    async def requeue_rows(self, ids: Sequence[int], *, now: float) -> int:
        """Dead rows by id back to pending with a fresh schedule (same event id)."""
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        return await self._count(
            "UPDATE outbox SET state='pending', attempts=0, next_attempt_at=?, lease_owner=NULL,"  # noqa: S608  # placeholders only
            f" lease_until=NULL WHERE state='dead' AND id IN ({marks})",
            (now, *ids),
        )

    async def requeue_dead(self, *, sink: str | None, now: float) -> int:
        where = " AND sink=?" if sink else ""
        return await self._count(
            "UPDATE outbox SET state='pending', attempts=0, next_attempt_at=?,"  # noqa: S608  # fixed fragments
            f" lease_owner=NULL, lease_until=NULL WHERE state='dead'{where}",
            (now, sink) if sink else (now,),
        )

    async def make_due(self, *, sink: str | None, now: float) -> int:
        """`spmon outbox retry --pending`: pending rows (of one sink, or all) that wait for a
        later attempt are due now. Schedules and attempts are kept; rows in flight are left
        to their delivery; per-session order still holds (claim hands out heads only)."""
        where = " AND sink=?" if sink else ""
        return await self._count(
            "UPDATE outbox SET next_attempt_at=? WHERE state='pending' AND next_attempt_at > ?"  # noqa: S608  # fixed fragments
            f" AND (lease_until IS NULL OR lease_until < ?){where}",
            (now, now, now, sink) if sink else (now, now, now),
        )

    async def purge_settled(
        self,
        *,
        state: OutboxState,
        sink: str | None,
        before: float | None,
        keep: Sequence[str],
        limit: int | None = None,
    ) -> int:
        """Delete delivered or dead rows, except each session's latest row of the `keep` types
        per sink: the resend loop reads which alerts are firing from exactly those rows. With
        `limit`, at most that many (a short transaction: polls commit in between)."""
        if state not in SETTLED:
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
        return await self._count(sql, args)


def _entry(*found: Any) -> OutboxEntry:
    row_id, event_id, sink, session_sid, event_type, state, *rest = found
    return OutboxEntry(row_id, event_id, sink, session_sid, event_type, OutboxState(state), *rest)


def _filters(*, state: OutboxState | None, sink: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses = [(clause, value) for clause, value in (("state=?", state), ("sink=?", sink)) if value]
    if not clauses:
        return "WHERE 1=1", ()
    return "WHERE " + " AND ".join(c for c, _ in clauses), tuple(v for _, v in clauses)
