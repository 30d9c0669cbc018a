"""Persistent state: snapshots, review states and the alert outbox."""

from __future__ import annotations

from pathlib import Path

from monitor.store.base import (
    OutboxRow,
    OutboxStats,
    PollRecord,
    SessionRecord,
    StateFileError,
    StoreLocked,
)
from monitor.store.committer import Committer
from monitor.store.ports import OutboxAdmin, OutboxStore, SessionStore
from monitor.store.sqlite import SharedSqliteStore, SqliteStore

__all__ = [
    "Committer",
    "OutboxAdmin",
    "OutboxRow",
    "OutboxStats",
    "OutboxStore",
    "PollRecord",
    "SessionRecord",
    "SessionStore",
    "SharedSqliteStore",
    "SqliteStore",
    "StateFileError",
    "StoreLocked",
    "open_shared",
    "open_store",
]


def open_store(path: Path) -> SqliteStore:
    """The store for a state path (SQLite today; a PostgreSQL DSN can dispatch here later)."""
    return SqliteStore(path)


def open_shared(path: Path) -> SharedSqliteStore:
    """The store opened beside a running service, for operator commands (no process lock)."""
    return SharedSqliteStore(path)
