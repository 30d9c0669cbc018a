"""The PostgreSQL store (`state.url`): every port (`monitor.store.ports`) on one database.

Its modules are imported where a PostgreSQL URL is opened (`monitor.store.open_store` and
friends), not with this package: psycopg costs every SQLite process about 9 MB otherwise."""

from monitor.store.postgres.url import is_postgres, masked

__all__ = ["is_postgres", "masked"]
