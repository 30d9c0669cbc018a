"""The embedded SQLite store: every port (`monitor.store.ports`) on one file."""

from monitor.store.sqlite.store import SharedSqliteStore, SqliteStore

__all__ = ["SharedSqliteStore", "SqliteStore"]
