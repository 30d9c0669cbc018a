"""Persistent state: snapshots, review states, the alert outbox, history and the watch set."""

from __future__ import annotations

from pathlib import Path

from monitor.store.base import (
    OutboxRow,
    OutboxStats,
    PollRecord,
    QuietWindow,
    SessionRecord,
    StateFileError,
    StoreLocked,
    WatchRecord,
)
from monitor.store.committer import Committer
from monitor.store.ports import (
    HistoryRetention,
    OutboxAdmin,
    OutboxStore,
    ReadStore,
    SessionStore,
    WatchStore,
)
from monitor.store.sqlite import (
    SharedSqliteStore,
    SqliteStore,
    StateReader,
    WatchReader,
    copy_state,
)

__all__ = [
    "Committer",
    "HistoryRetention",
    "OutboxAdmin",
    "OutboxRow",
    "OutboxStats",
    "OutboxStore",
    "PollRecord",
    "QuietWindow",
    "ReadStore",
    "SessionRecord",
    "SessionStore",
    "SharedSqliteStore",
    "SqliteStore",
    "StateFileError",
    "StateReader",
    "StoreLocked",
    "WatchReader",
    "WatchRecord",
    "WatchStore",
    "copy_state",
    "open_shared",
    "open_store",
    "read_state",
    "read_watches",
]


def open_store(path: Path) -> SqliteStore:
    """The store for a state path (SQLite today; a PostgreSQL DSN can dispatch here later)."""
    return SqliteStore(path)


def open_shared(path: Path) -> SharedSqliteStore:
    """The store opened beside a running service, for operator commands (no process lock)."""
    return SharedSqliteStore(path)


def read_watches(path: Path) -> WatchReader:
    """The watch set of a state file, read-only, beside a running service or without one."""
    return WatchReader(path)


def read_state(path: Path) -> StateReader:
    """Sessions and their history from a state file, read-only, beside a running service (no
    lock needed) or without one."""
    return StateReader(path)
