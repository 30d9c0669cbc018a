"""A state file read-only (`ReadStore`): beside a running `spmon run` that holds its lock, or
with no service at all. Its own connection and thread, so a long read never holds up the
writer's commits; `query_only`, no lock, no migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitor.store import statefile
from monitor.store.base import StateFileError
from monitor.store.opening import Opening
from monitor.store.sqlite.connection import Db, connect_query_only
from monitor.store.sqlite.history import History
from monitor.store.sqlite.outbox import Outbox

__all__ = ["Reader", "StateReader"]

_WATCHES_VERSION = 4
"""The first schema with the watch set, which every read joins."""


class Reader(Opening):
    """`async with` a reader of a state file a running spmon may be writing: no process lock,
    no migration; `_start` connects (query-only) and checks what it reads."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _close(self) -> None:
        self.db.close()


class StateReader(Reader, History, Outbox):
    """`async with StateReader(path) as reader:` reads sessions, history and the outbox's
    backlog. (It inherits the outbox's writes too, for its `stats`: the connection refuses
    them.) A file from before the history table reads with no transitions."""

    def _start(self) -> None:
        if not self.path.exists():  # connecting would create it
            raise StateFileError(self.path, "does not exist")
        db: Db | None = None
        try:
            db = connect_query_only(self.path)
            db.execute("PRAGMA busy_timeout=5000")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            found = db.execute("SELECT 1 FROM sqlite_master WHERE name='transition'").fetchone()
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            raise StateFileError(self.path, f"cannot be read: {statefile.describe(exc)}") from None
        if version < _WATCHES_VERSION:
            db.close()
            raise StateFileError(self.path, "is from an older spmon: run it once to migrate")
        self._has_history = found is not None
        self._db = db
