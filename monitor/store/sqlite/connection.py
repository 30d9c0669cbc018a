"""The one SQLite connection and the one thread every query runs on.

Each query is written once, as an async method that hands a function of the connection to
`_read` (no transaction) or `_write` (one `BEGIN IMMEDIATE` transaction): the event loop never
blocks on disk, and there is exactly one writer (SQLite allows no more).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Connection", "Db", "connect_query_only", "copy_state"]

T = TypeVar("T")
Db = sqlite3.Connection


class Connection:
    """Owns the connection and its writer thread; the role mixins query through it."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spmon-sqlite")
        self._db: Db | None = None

    @property
    def db(self) -> Db:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def _open_with(self, start: Callable[[], None]) -> None:
        """Run `start` (connect, check, lock) on the connection's thread; if it fails, the
        thread is let go at once, as there is nothing to close."""
        try:
            await self._call(start)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    async def _close_with(self, stop: Callable[[], None]) -> None:
        # Shielded: a cancelled shutdown must still checkpoint the WAL, close and unlock.
        await asyncio.shield(self._call(stop))
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _read(self, fn: Callable[[Db], T]) -> T:
        return await self._call(lambda: fn(self.db))

    async def _write(self, fn: Callable[[Db], T]) -> T:
        def transaction() -> T:
            with tx(self.db):
                return fn(self.db)

        return await self._call(transaction)

    def _skip_locked(self, table: str) -> str:
        """The locking clause a claim's row choice ends with: none on SQLite, whose one
        writer never meets another (PostgreSQL's replicas skip each other's rows)."""
        return ""

    async def _count(self, sql: str, args: tuple[Any, ...]) -> int:
        """One statement in its own transaction; how many rows it changed."""
        return await self._write(lambda db: db.execute(sql, args).rowcount)


@contextlib.contextmanager
def tx(db: Db) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front: a deferred BEGIN that reads then writes can
    # fail with SQLITE_BUSY despite busy_timeout.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def connect_query_only(path: Path) -> Db:
    """A connection that reads a state file a running spmon may be writing, and writes nothing.

    Read-write but query_only, not mode=ro: a read-only connection to a WAL database leaves
    -wal/-shm files behind; this one cleans up after itself."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA query_only=1")
    except BaseException:
        db.close()
        raise
    return db


def copy_state(source: Path, target: Path) -> None:
    """A consistent copy of the state file, even while a running spmon writes it (SQLite's
    online backup); a missing file leaves the copy fresh, as a first run would be."""
    if not source.exists():
        return
    src = connect_query_only(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
