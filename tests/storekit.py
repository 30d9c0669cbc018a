"""Reading the store behind its back, on SQLite or PostgreSQL: what tests check that no
caller needs."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from monitor.store import OutboxRow, Where

_COLUMNS = "id, event_id, sink, session_sid, payload, created_at, attempts, state, last_error"
DB_ERRORS = (sqlite3.Error, psycopg.Error)
"""What a failed statement raises, on either store."""


def where_of(store: Any) -> Where:
    url = getattr(store, "url", None)
    return SecretStr(url) if isinstance(url, str) else Path(store.path)


def query(where: Where, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of one statement on a second connection (`?` placeholders on both)."""
    if isinstance(where, Path):
        with contextlib.closing(sqlite3.connect(f"file:{where.resolve()}?mode=ro", uri=True)) as db:
            return list(db.execute(sql, tuple(args)))
    with psycopg.connect(where.get_secret_value(), autocommit=True) as conn:
        return list(conn.execute(sql.replace("?", "%s"), tuple(args)))  # type: ignore[arg-type]


def execute(where: Where, sql: str, rows: Sequence[Sequence[Any]] = ((),)) -> None:
    """One statement for each of `rows`, committed (changing what tests set up by hand)."""
    if isinstance(where, Path):
        with contextlib.closing(sqlite3.connect(where)) as db, db:
            db.executemany(sql, rows)
        return
    with (
        psycopg.connect(where.get_secret_value(), autocommit=True) as conn,
        conn.cursor() as cursor,
    ):
        cursor.executemany(sql.replace("?", "%s"), rows)  # type: ignore[arg-type]


async def outbox_rows(store: Any, *, state: str | None, limit: int) -> list[OutboxRow]:
    """The outbox rows of an open store, oldest first (a second, read-only connection: WAL,
    or PostgreSQL's MVCC, lets it read beside the store's writer)."""
    where, args = ("WHERE state=?", (state,)) if state else ("", ())
    found = query(
        where_of(store),
        f"SELECT {_COLUMNS} FROM outbox {where} ORDER BY id LIMIT ?",  # noqa: S608
        (*args, limit),
    )
    return [OutboxRow(*row) for row in found]
