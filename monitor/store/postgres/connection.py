"""A pool of PostgreSQL connections behind the same `_read`/`_write` seam as SQLite's one.

The role queries (`monitor.store.sqlite.sessions`, `outbox`, `admin`, `watches`, `history`)
are written once, in the SQL both databases read, against a DB-API-shaped connection. Here
that connection is a psycopg 3 one from psycopg-pool, on the store's own thread: the event
loop never waits on the network, and a connection the server dropped is replaced by the pool
before the next call instead of failing it. `?` placeholders become `%s`.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import psycopg
from psycopg_pool import ConnectionPool

from monitor.store.base import StateFileError
from monitor.store.postgres.url import masked, password
from monitor.store.sqlite.connection import Connection, Db

__all__ = ["PgConnection", "PgDb", "connect", "database_error"]

T = TypeVar("T")
CONNECT_TIMEOUT = 10
"""Seconds to reach the server: a wrong host fails the start, not hangs it."""


class PgDb:
    """A psycopg connection with the face of `sqlite3.Connection` the role queries use."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(_dialect(sql), args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = list(rows)
        if batch:
            with self.conn.cursor() as cursor:
                cursor.executemany(_dialect(sql), batch)


@functools.lru_cache(maxsize=256)
def _dialect(sql: str) -> str:
    # The queries hold no literal `?` or `%`: placeholders are the only ones.
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection(Connection):
    """Owns the pool and the thread the role mixins query through."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__()
        self.url = url
        self.where = masked(url)
        self._read_only = read_only
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None

    def _open_pool(self) -> None:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.url,
            kwargs=connect_kwargs(read_only=self._read_only),
            min_size=1,
            max_size=1,
            # A connection the server dropped (a restart, a failover, an idle timeout) is
            # replaced before it is handed out: one empty round trip per call, and no failed
            # commit after every database restart.
            check=ConnectionPool.check_connection,
            open=False,
            name="spmon",
        )
        pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        self._pool = pool

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @property
    def pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    def _skip_locked(self, table: str) -> str:
        # Replicas claiming at once: each takes rows no other transaction has locked, instead
        # of queueing behind it and then leasing the same rows a second time.
        return f" FOR UPDATE OF {table} SKIP LOCKED"

    async def _read(self, fn: Callable[[Db], T]) -> T:
        def read() -> T:
            with self.pool.connection() as conn:
                return fn(cast(Db, PgDb(conn)))

        return await self._call(read)

    async def _write(self, fn: Callable[[Db], T]) -> T:
        def transaction() -> T:
            with self.pool.connection() as conn, conn.transaction():
                return fn(cast(Db, PgDb(conn)))

        return await self._call(transaction)


def connect_kwargs(*, read_only: bool = False) -> dict[str, Any]:
    """Autocommit (writes open their own transaction), keepalives, a name that says which process holds a
    connection (pg_stat_activity, and the refusal of a second `spmon run`), and for readers a
    session that refuses every write."""
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT,
        # The lock's connection idles for days: keepalives find a dead peer in about a minute
        # (and keep idle-dropping middleboxes from ending it), rather than never.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "application_name": f"spmon pid {os.getpid()} on {socket.gethostname()}"[:63],
    }
    if read_only:
        kwargs["options"] = "-c default_transaction_read_only=on"
    else:
        # A writer stopped inside a transaction (SIGSTOP, a frozen VM) holds its fence's
        # FOR SHARE locks, and with them its shards, from every peer: the server ends it.
        kwargs["options"] = "-c idle_in_transaction_session_timeout=10000"
    return kwargs


def connect(url: str, *, read_only: bool = False) -> psycopg.Connection[Any]:
    """One connection outside the pool (the process lock, migrations); errors as one line."""
    try:
        return psycopg.connect(url, **connect_kwargs(read_only=read_only))
    except psycopg.Error as exc:
        raise database_error(url, exc) from None


def database_error(url: str, exc: BaseException) -> StateFileError:
    """What went wrong, in one line, naming the database with its password masked (psycopg's
    messages name host and user; the password is scrubbed should one ever hold it)."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    secret = password(url)
    if secret:
        reason = reason.replace(secret, "***")
    return StateFileError(masked(url), f"cannot be used: {reason}")
