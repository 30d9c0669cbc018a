"""The embedded state store: one SQLite file in WAL mode, one writer thread, locked by itself.

This module opens, locks, migrates and closes the file; the queries live with their role
(`sessions`, `outbox`, `admin`, `watches`, `history`), all on the one connection of `connection.Connection`.
"""

from __future__ import annotations

import functools
import os
import secrets
import sqlite3
from importlib import resources
from pathlib import Path

from monitor.store import statefile
from monitor.store.base import StateFileError
from monitor.store.opening import StoreOpening
from monitor.store.sqlite.admin import Admin
from monitor.store.sqlite.batches import Batches
from monitor.store.sqlite.connection import Db, tx
from monitor.store.sqlite.history import History
from monitor.store.sqlite.outbox import Outbox
from monitor.store.sqlite.sessions import Sessions
from monitor.store.sqlite.watches import Watches

__all__ = ["SharedSqliteStore", "SqliteStore"]


class SqliteStore(StoreOpening, Sessions, Outbox, Batches, Admin, Watches, History):
    """`async with SqliteStore(path) as store:` opens, locks and migrates; exit closes."""

    exclusive = True
    """Holds the single-instance lock, so leases left in the file belong to no live process."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        super().__init__()
        self.path = path
        self._synchronous = synchronous
        self._fd: int | None = None

    def _migrations(self) -> tuple[str, ...]:
        return _scripts()

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
            with tx(db):
                db.execute(
                    "UPDATE outbox SET lease_owner=NULL, lease_until=NULL WHERE state='pending'"
                    " AND lease_owner IS NOT NULL"
                )
        self._deployment = deployment  # open: from here on, closing checkpoints the WAL

    def _prepare(self, db: Db) -> str:
        """Migrate, and give the store its deployment id if it has none yet; return it."""
        _migrate(db)
        with tx(db):
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('deployment_id', ?)",
                (secrets.token_hex(16),),
            )
            row = db.execute("SELECT value FROM meta WHERE key='deployment_id'").fetchone()
        return str(row[0])

    def _close(self) -> None:
        if self._db is not None:
            if self._deployment:  # opened all the way; a refused file is closed untouched
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None
        if self._fd is not None:  # only now: closing it earlier would drop SQLite's locks
            os.close(self._fd)  # and with it the flock
            self._fd = None


class SharedSqliteStore(SqliteStore):
    """The same file opened *beside* a running service, for operator commands (`spmon outbox`):
    no process lock, since SQLite's own locking (WAL, BEGIN IMMEDIATE, busy_timeout) already
    serialises the few writes these commands make against the service's. Not holding the
    lock, it never releases leases: they may be a running service's."""

    exclusive = False


def _migrate(db: Db) -> None:
    current = db.execute("PRAGMA user_version").fetchone()[0]
    for number, sql in enumerate(_scripts(), start=1):
        if number > current:
            with tx(db):
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")


@functools.cache
def _scripts() -> tuple[str, ...]:
    """The schema migrations, in order; `PRAGMA user_version` counts those applied."""
    found = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in resources.files("monitor.store").joinpath("schema").iterdir()
        if entry.name.endswith(".sql")
    )
    return tuple(sql for _, sql in found)
