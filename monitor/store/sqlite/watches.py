"""The watch set on SQLite (`WatchStore`), and a read-only view of it for commands that run
beside a live service (`spmon check-config`, `spmon watch ls`)."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any

from monitor.core.keys import SessionKey
from monitor.core.watches import NO_LABELS, Changes, Watch, shared_labels
from monitor.store import statefile
from monitor.store.base import StateFileError, WatchRecord
from monitor.store.sqlite.connection import Connection, Db, connect_query_only
from monitor.store.sqlite.reader import Reader

__all__ = ["WatchReader", "Watches"]

_COLUMNS = "install_sid, exam_sid, session_sid, labels, interval, source"
_ACTIVE = f"SELECT {_COLUMNS} FROM watches WHERE removed_at IS NULL"  # noqa: S608  # fixed fragments
# One open row per session sid: a watch listed again under another install or exam replaces it.
_UPSERT = (
    "INSERT INTO watches (install_sid, exam_sid, session_sid, labels, interval, source, added_at)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (session_sid) WHERE removed_at IS NULL DO UPDATE SET"
    " install_sid=excluded.install_sid, exam_sid=excluded.exam_sid, labels=excluded.labels,"
    " interval=excluded.interval, source=excluded.source"
)
_REMOVE = "UPDATE watches SET removed_at=? WHERE session_sid=? AND removed_at IS NULL"


class Watches(Connection):
    async def active_watches(
        self, like: Callable[[SessionKey], Watch | None] | None = None
    ) -> dict[SessionKey, Watch]:
        # Row by row, not fetchall: 100,000 raw rows held beside their watches would double
        # the start's peak memory. For the same reason a stored watch equal to one in `like`
        # (what the sources list now) is that one object.
        def read(db: Db) -> dict[SessionKey, Watch]:
            found = {}
            for watch in map(_watch, db.execute(f"{_ACTIVE} ORDER BY id")):
                same = like(watch.key) if like is not None else None
                found[watch.key] = same if same == watch and same is not None else watch
            return found

        return await self._read(read)

    async def apply_watches(self, changes: Changes, *, now: float) -> None:
        """A reconcile's added, changed and removed watches, in one transaction."""

        def write(db: Db) -> None:
            # Removals first: a session moved to another exam is a removal and an addition.
            db.executemany(_REMOVE, [(now, w.key.session_sid) for w in changes.removed])
            db.executemany(_UPSERT, _rows((*changes.added, *changes.changed), now))

        await self._write(write)

    async def add_watch(self, watch: Watch, *, now: float) -> Watch | None:
        def write(db: Db) -> Watch | None:
            held = _held(db, watch.key.session_sid)
            db.executemany(_UPSERT, _rows((watch,), now))
            return held

        return await self._write(write)

    async def remove_watch(self, session_sid: str, *, now: float) -> Watch | None:
        def write(db: Db) -> Watch | None:
            held = _held(db, session_sid)
            db.execute(_REMOVE, (now, session_sid))
            return held

        return await self._write(write)

    async def watch_history(self) -> list[WatchRecord]:
        rows = await self._read(
            lambda db: db.execute(
                f"SELECT {_COLUMNS}, added_at, removed_at FROM watches ORDER BY id"  # noqa: S608  # fixed fragments
            ).fetchall()
        )
        return [WatchRecord(_watch(row[:6]), *row[6:]) for row in rows]


class WatchReader(Reader, Watches):
    """`async with WatchReader(path) as watches:` reads the watch set of a state file that a
    running spmon may be writing: no process lock, no migration, and `query_only`, so nothing
    it does can change the file. A state file from before the watch table reads as empty."""

    def _start(self) -> None:
        db: Db | None = None
        try:
            db = connect_query_only(self.path)
            db.execute("PRAGMA busy_timeout=5000")
            found = db.execute("SELECT 1 FROM sqlite_master WHERE name='watches'").fetchone()
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            raise StateFileError(self.path, f"cannot be read: {statefile.describe(exc)}") from None
        if found is None:
            db.close()
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            db.executescript(_schema())
        self._db = db


def _schema() -> str:
    return resources.files("monitor.store").joinpath("schema/004_watches.sql").read_text("utf-8")


def _held(db: Db, session_sid: str) -> Watch | None:
    row = db.execute(f"{_ACTIVE} AND session_sid=?", (session_sid,)).fetchone()
    return None if row is None else _watch(row)


def _rows(watches: Iterable[Watch], now: float) -> list[tuple[Any, ...]]:
    return [(*w.key, _dump(w.labels), w.interval, w.source, now) for w in watches]


def _dump(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":")) if labels else "{}"


def _watch(row: tuple[Any, ...]) -> Watch:
    install, exam, session, labels, interval, source = row
    loaded = json.loads(labels)
    # 100,000 watches share a few installs, exams, label keys and values: one copy of each.
    shared = shared_labels(loaded) if loaded else NO_LABELS
    key = SessionKey(sys.intern(install), sys.intern(exam), session)
    return Watch(key, shared, interval, sys.intern(source))
