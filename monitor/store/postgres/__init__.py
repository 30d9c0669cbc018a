"""The PostgreSQL store (`state.url`): every port (`monitor.store.ports`) on one database."""

from monitor.store.postgres.reader import PgStateReader, PgWatchReader
from monitor.store.postgres.store import PostgresStore, SharedPostgresStore
from monitor.store.postgres.url import is_postgres, masked

__all__ = [
    "PgStateReader",
    "PgWatchReader",
    "PostgresStore",
    "SharedPostgresStore",
    "is_postgres",
    "masked",
]
