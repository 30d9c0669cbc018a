"""The PostgreSQL store (`state.url: postgresql://…`): every port on one database.

This module opens, migrates and closes; the queries are SQLite's role mixins, run through
`PgConnection`. Several `spmon run` may share one database: they split the sessions through
shard leases (`monitor.leasing`), and every commit is fenced on them (`_fence`), so there is
no process lock here, and no start-up release of outbox leases (each replica releases only
its own, by owner, when it stops; a crashed one's expire by `lease_until`).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable
from importlib import resources
from typing import Any

import psycopg

from monitor.core.shards import shard_of
from monitor.store.base import StateFileError
from monitor.store.opening import StoreOpening
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

MIGRATE_KEY = 0x73706D6F + 1
"""Held for a migration's transaction ("spmo" + 1, the key of the process lock replicas
replaced): two processes starting at once migrate one by one. Advisory locks are scoped to
the database, so two spmon databases on one server do not meet."""
_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS spmon_schema (version integer PRIMARY KEY,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)


class PostgresStore(StoreOpening, PgConnection, Sessions, Outbox, Batches, Admin, Watches, History):
    """`async with PostgresStore(url) as store:` connects and migrates; exit closes."""

    fence: Fence | None = None
    """The shard leases (`leasing.Leaser`) commits are fenced on; None writes every shard."""

    def _migrations(self) -> tuple[str, ...]:
        return _scripts()

    def _fence(self, db: Db, sids: Iterable[str]) -> frozenset[str]:
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
            with connect(self.url) as conn:
                migrate(conn, self.where)
                self._deployment = _deployment(conn)
            self._open_pool()
        except BaseException as exc:
            self._close()
            if isinstance(exc, psycopg.Error | TimeoutError):
                raise database_error(self.url, exc) from None
            raise

    def _close(self) -> None:
        self._close_pool()


class SharedPostgresStore(PostgresStore):
    """The database opened beside a running service, for operator commands (`spmon outbox`,
    `spmon watch`): the same as a service's store now that replicas share the database."""


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


def _deployment(conn: psycopg.Connection[Any]) -> str:
    """The database's deployment id (made on first open). Outbox leases are left alone: with
    replicas, a lease in the outbox may be a live peer's."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('deployment_id', %s) ON CONFLICT DO NOTHING",
            (secrets.token_hex(16),),
        )
        row = conn.execute("SELECT value FROM meta WHERE key='deployment_id'").fetchone()
    assert row is not None  # inserted just above
    return str(row[0])


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
