"""The PostgreSQL store (`state.url: postgresql://…`): every port on one database.

This module opens, locks, migrates and closes; the queries are SQLite's role mixins, run
through `PgConnection`. One `spmon run` per database, as one per SQLite file: a session-level
advisory lock, held on a connection of its own for the store's life, refuses a second one
(shard leases, for several replicas, come later and replace it).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from importlib import resources
from types import TracebackType
from typing import Any, Self

import psycopg

from monitor.core.shards import shard_of
from monitor.store.base import StateFileError, StoreLocked
from monitor.store.ports import Fence
from monitor.store.postgres.connection import PgConnection, connect, database_error
from monitor.store.postgres.leases import FENCE
from monitor.store.sqlite.admin import Admin
from monitor.store.sqlite.batches import Batches
from monitor.store.sqlite.connection import Db
from monitor.store.sqlite.history import History
from monitor.store.sqlite.outbox import Outbox
from monitor.store.sqlite.sessions import Sessions
from monitor.store.sqlite.watches import Watches

__all__ = ["PostgresStore", "SharedPostgresStore", "migrate", "schema_version"]

LOCK_KEY = 0x73706D6F
"""The advisory lock one `spmon run` holds per database ("spmo"); advisory locks are scoped
to the database, so two spmon databases on one server do not meet."""
MIGRATE_KEY = LOCK_KEY + 1
"""Held for a migration's transaction: two processes starting at once migrate one by one."""
_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS spmon_schema (version integer PRIMARY KEY,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)


class PostgresStore(PgConnection, Sessions, Outbox, Batches, Admin, Watches, History):
    """`async with PostgresStore(url) as store:` connects, locks and migrates; exit closes."""

    exclusive = True
    """Holds the process lock, so leases left in the outbox belong to no live process."""
    fence: Fence | None = None
    """The shard leases (`leasing.Leaser`) commits are fenced on; None writes every shard."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._lock: psycopg.Connection[Any] | None = None
        self._deployment = ""

    async def __aenter__(self) -> Self:
        await self._open_with(self._start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close_with(self._close)

    @property
    def deployment_id(self) -> str:
        """128 random bits made with the database: every event id is scoped to it."""
        if not self._deployment:
            raise RuntimeError("store is not open")
        return self._deployment

    @property
    def schema_version(self) -> int:
        """The migrations this store has (all of them, once open)."""
        return len(_scripts())

    async def ping(self) -> None:
        """The pool answers, and this process still holds the lock (a dropped lock connection
        is taken again; if another process took the lock meanwhile, this raises)."""
        await self._read(lambda db: db.execute("SELECT 1").fetchone())
        if self.exclusive:
            await self._call(self._keep_lock)

    def _fence(self, db: Db, sids: set[str]) -> frozenset[str]:
        """Of `sids`, those whose shard this replica does not hold at its epoch, checked (and
        locked FOR SHARE) in the commit's own transaction."""
        fence = self.fence
        if fence is None:
            return frozenset()
        owned = fence.owned()
        shards = {sid: shard_of(sid) for sid in sids}
        asked = {shard: owned[shard] for shard in set(shards.values()) if shard in owned}
        held: set[int] = set()
        if asked:
            args = (fence.owner, list(asked), list(asked.values()))
            held = {int(row[0]) for row in db.execute(FENCE, args)}
        return frozenset(sid for sid, shard in shards.items() if shard not in held)

    def _start(self) -> None:
        try:
            if self.exclusive:
                self._take_lock()
            with connect(self.url) as conn:
                migrate(conn, self.where)
                self._deployment = _deployment(conn, release=self.exclusive)
            self._open_pool()
        except BaseException as exc:
            self._close()
            if isinstance(exc, psycopg.Error | TimeoutError):
                raise database_error(self.url, exc) from None
            raise

    def _take_lock(self) -> None:
        lock = connect(self.url)
        try:
            taken = lock.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            if not (taken and taken[0]):
                holder = _holder(lock)
                raise StoreLocked(self.where, f"in use by another spmon process ({holder})")
        except BaseException:
            lock.close()
            raise
        self._lock = lock

    def _keep_lock(self) -> None:
        lock = self._lock
        if lock is not None and not lock.closed:
            try:
                lock.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                lock.close()
        self._lock = None
        self._take_lock()

    def _close(self) -> None:
        self._close_pool()
        if self._lock is not None:
            # Unlocked by the server before we return: closing the session alone ends the
            # lock only when its backend has exited, which a next start may beat.
            with contextlib.suppress(psycopg.Error):
                self._lock.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            self._lock.close()
            self._lock = None


class SharedPostgresStore(PostgresStore):
    """The database opened beside a running service, for operator commands (`spmon outbox`,
    `spmon watch`): no process lock, and so no release of leases that may be a running
    service's."""

    exclusive = False


def migrate(conn: psycopg.Connection[Any], where: str) -> int:
    """Apply the numbered scripts not yet applied, in one transaction; the version reached."""
    scripts = _scripts()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_KEY,))
        conn.execute(_VERSIONS)
        current = _applied(conn)
        if current > len(scripts):
            raise StateFileError(
                where, f"is from a newer spmon (schema {current}; this one knows {len(scripts)})"
            )
        for number, sql in enumerate(scripts, start=1):
            if number > current:
                conn.execute(sql.encode())  # several statements, no parameters
                conn.execute("INSERT INTO spmon_schema (version) VALUES (%s)", (number,))
    return max(current, len(scripts))


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The migrations applied (0 on a database spmon never opened)."""
    found = conn.execute("SELECT to_regclass('spmon_schema') IS NOT NULL").fetchone()
    return _applied(conn) if found and found[0] else 0


def _applied(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM spmon_schema").fetchone()
    return int(row[0]) if row else 0


def _deployment(conn: psycopg.Connection[Any], *, release: bool) -> str:
    """The database's deployment id (made on first open); with the lock held, leases left by
    a process that is gone are let go (their attempt stays counted, as on SQLite)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('deployment_id', %s) ON CONFLICT DO NOTHING",
            (secrets.token_hex(16),),
        )
        row = conn.execute("SELECT value FROM meta WHERE key='deployment_id'").fetchone()
        if release:
            conn.execute(
                "UPDATE outbox SET lease_owner=NULL, lease_until=NULL WHERE state='pending'"
                " AND lease_owner IS NOT NULL"
            )
    assert row is not None  # inserted just above
    return str(row[0])


def _holder(conn: psycopg.Connection[Any]) -> str:
    """Who holds the lock, as pg_stat_activity knows them (their application_name names the
    pid and host), or why that cannot be said."""
    row = conn.execute(
        "SELECT a.application_name, host(a.client_addr), a.backend_start FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'"
        " AND l.granted AND l.objid = %s AND l.classid = 0"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (LOCK_KEY,),
    ).fetchone()
    if row is None:
        return "holder not visible to this database user"
    name, client, since = row
    at = f" from {client}" if client else ""
    return f"{name or 'unnamed'}{at}, connected since {since:%Y-%m-%d %H:%M:%S %Z}"


@functools.cache
def _scripts() -> tuple[str, ...]:
    """PostgreSQL's numbered migrations, in order; `spmon_schema` records those applied."""
    folder = resources.files("monitor.store").joinpath("schema").joinpath("postgres")
    found = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return tuple(sql for _, sql in found)
