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
from monitor.store.batch import Committer
from monitor.store.sqlite import SqliteStore

__all__ = [
    "Committer",
    "OutboxRow",
    "OutboxStats",
    "PollRecord",
    "SessionRecord",
    "SqliteStore",
    "StateFileError",
    "StoreLocked",
    "open_store",
]


def open_store(path: Path) -> SqliteStore:
    """The store for a state path (SQLite today; a PostgreSQL DSN can dispatch here later)."""
    return SqliteStore(path)
