"""Persistent state: snapshots, review states, the alert outbox, history and the watch set."""

from __future__ import annotations

import sqlite3
import sys
from contextlib import AbstractAsyncContextManager as Opens
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from pydantic import SecretStr

from monitor.store.base import (
    Fenced,
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
    Fence,
    HistoryRetention,
    OutboxAdmin,
    OutboxStore,
    ReadStore,
    SessionStore,
    WatchStore,
)
from monitor.store.postgres.url import masked
from monitor.store.sqlite import (
    SharedSqliteStore,
    SqliteStore,
    StateReader,
    WatchReader,
    copy_state,
)

if TYPE_CHECKING:
    from monitor.store.postgres.reader import PgStateReader, PgWatchReader
    from monitor.store.postgres.store import PostgresStore, SharedPostgresStore

__all__ = [
    "Committer",
    "Fence",
    "Fenced",
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
    "Store",
    "StoreLocked",
    "WatchReader",
    "WatchRecord",
    "WatchStore",
    "Where",
    "copy_state",
    "database_errors",
    "describe",
    "exists",
    "migrate",
    "open_shared",
    "open_store",
    "read_state",
    "read_watches",
]


def database_errors() -> tuple[type[Exception], ...]:
    """What a statement that failed raises, on either store (psycopg's only once a
    PostgreSQL store was opened: nothing else can raise them)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if psycopg is None else (sqlite3.Error, psycopg.Error)


Where = Path | SecretStr
"""Where state lives: a SQLite file, or a PostgreSQL URL (secret: it may hold a password)."""
Store: TypeAlias = "SqliteStore | PostgresStore"
"""A store that holds the process lock: every port, its deployment id and a ping."""


def describe(where: Where) -> str:
    """Where state lives, as logs and errors may show it (a URL's password masked)."""
    return str(where) if isinstance(where, Path) else masked(where.get_secret_value())


def exists(where: Where) -> bool:
    """Whether there is state to read: a SQLite file that exists; a database always (opening
    it says what is wrong, if anything)."""
    return where.exists() if isinstance(where, Path) else True


async def migrate(where: Where) -> int:
    """Bring the schema up to date (beside a running service too: migrations take their own
    lock); the number of migrations the store now has."""
    async with open_shared(where) as store:
        return store.schema_version


def open_store(where: Where) -> Opens[Store]:
    """The store for `state.path` (SQLite) or `state.url` (PostgreSQL), locked to this
    process: migrated and ready when entered."""
    if isinstance(where, Path):
        return SqliteStore(where)
    from monitor.store.postgres.store import PostgresStore

    return PostgresStore(where.get_secret_value())


def open_shared(where: Where) -> Opens[SharedSqliteStore | SharedPostgresStore]:
    """The store opened beside a running service, for operator commands (no process lock)."""
    if isinstance(where, Path):
        return SharedSqliteStore(where)
    from monitor.store.postgres.store import SharedPostgresStore

    return SharedPostgresStore(where.get_secret_value())


def read_watches(where: Where) -> Opens[WatchReader | PgWatchReader]:
    """The watch set, read-only, beside a running service or without one."""
    if isinstance(where, Path):
        return WatchReader(where)
    from monitor.store.postgres.reader import PgWatchReader

    return PgWatchReader(where.get_secret_value())


def read_state(where: Where) -> Opens[StateReader | PgStateReader]:
    """Sessions and their history, read-only, beside a running service (no lock needed) or
    without one."""
    if isinstance(where, Path):
        return StateReader(where)
    from monitor.store.postgres.reader import PgStateReader

    return PgStateReader(where.get_secret_value())
