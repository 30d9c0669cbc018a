"""Reading the outbox behind the store's back: what tests check that no caller needs."""

from __future__ import annotations

import sqlite3
from typing import Any

from monitor.store import OutboxRow

_COLUMNS = "id, event_id, sink, session_sid, payload, created_at, attempts, state, last_error"


async def outbox_rows(store: Any, *, state: str | None, limit: int) -> list[OutboxRow]:
    """The outbox rows of an open store's file, oldest first (a second, read-only connection:
    WAL lets it read beside the store's writer)."""
    where, args = ("WHERE state=?", (state,)) if state else ("", ())
    db = sqlite3.connect(f"file:{store.path.resolve()}?mode=ro", uri=True)
    try:
        cursor = db.execute(
            f"SELECT {_COLUMNS} FROM outbox {where} ORDER BY id LIMIT ?",  # noqa: S608
            (*args, limit),
        )
        return [OutboxRow(*row) for row in cursor]
    finally:
        db.close()
