"""The embedded SQLite store: every port (`monitor.store.ports`) on one file."""

from monitor.store.sqlite.connection import copy_state
from monitor.store.sqlite.reader import StateReader
from monitor.store.sqlite.store import SharedSqliteStore, SqliteStore
from monitor.store.sqlite.watches import WatchReader

__all__ = ["SharedSqliteStore", "SqliteStore", "StateReader", "WatchReader", "copy_state"]
