"""Shard leases on PostgreSQL: read, claim, renew and release `shard_lease` rows, with the
owner and epoch checked in the SQL itself, and the notifications peers wake on.

Synchronous on purpose: `monitor.leasing.Leaser` runs it on a thread of its own with
connections of its own, so a busy event loop or a full store pool never delays a renewal.
Every expiry is the server's `now()`; a replica's clock only decides when it asks.
The rules each statement follows are `core.shards.claimed` and `renewed`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from monitor.core.shards import Lease
from monitor.store.postgres.connection import connect_kwargs, database_error

__all__ = ["CHANNEL", "FENCE", "PAUSE_CHANNEL", "LeaseTable", "Round"]

CHANNEL = "spmon_shards"
"""NOTIFY'd when a replica lets shards go (stopping, or over its share): peers claim them at once
instead of at their next tick."""
PAUSE_CHANNEL = "spmon_api_pause"
"""NOTIFY'd with "<owner> <seconds>" when a replica's API answered 429: the fleet pauses, as
the API's budget is the fleet's, not one replica's."""

FENCE = (
    "SELECT shard FROM shard_lease WHERE owner = ? AND expires_at > now()"
    " AND (shard, epoch) IN (SELECT * FROM unnest(?::smallint[], ?::bigint[])) FOR SHARE"
)
"""The shards, of those asked for at their epochs, the owner holds now: a commit runs it first
in its own transaction, and the FOR SHARE lock keeps every one of them from being taken over
(a takeover skips locked rows) until the commit is over, so what it writes is still the
owner's when it lands."""


@dataclass(frozen=True, slots=True)
class Round:
    """The lease table as read in one statement, with the server's clock and the live
    replicas (this one included: it has just said it is alive)."""

    leases: tuple[Lease, ...]
    now: float
    replicas: int


class LeaseTable:
    """`with LeaseTable(url, owner, ttl=15) as table:` two connections, the lease one and a
    LISTEN one; exit deletes this replica's heartbeat and closes both (it does not release:
    `release` is the caller's, so a crash path cannot skip the owner check)."""

    def __init__(self, url: str, owner: str, *, ttl: float) -> None:
        self.url, self.owner, self.ttl = url, owner, ttl
        self._conn: psycopg.Connection[Any] | None = None
        self._listen: psycopg.Connection[Any] | None = None

    def __enter__(self) -> LeaseTable:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(psycopg.Error):
            self._db.execute("DELETE FROM replica WHERE owner = %s", (self.owner,))
        self.close()

    def connect(self) -> None:
        """(Re)open both connections; a dropped one is replaced on the next round."""
        self.close()
        try:
            self._conn = _connect(self.url)
            self._listen = _connect(self.url)
            self._listen.execute(f"LISTEN {CHANNEL}")
            self._listen.execute(f"LISTEN {PAUSE_CHANNEL}")
        except psycopg.Error as exc:
            self.close()
            raise database_error(self.url, exc) from None

    def close(self) -> None:
        for conn in (self._conn, self._listen):
            if conn is not None:
                conn.close()
        self._conn = self._listen = None

    @property
    def broken(self) -> bool:
        """A connection is missing or was closed: `connect` again before the next round."""
        return any(conn is None or conn.closed for conn in (self._conn, self._listen))

    @property
    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("the lease connection is closed")
        return self._conn

    def read(self) -> Round:
        """Heartbeat, then every lease row, the server's now and the live replicas, in one
        transaction (one snapshot: the count and the rows agree)."""
        db = self._db
        with db.transaction():
            db.execute(
                "INSERT INTO replica (owner) VALUES (%s) ON CONFLICT (owner) DO UPDATE"
                " SET seen_at = now()",
                (self.owner,),
            )
            now, replicas = _one(
                db,
                "SELECT extract(epoch FROM now())::float8, count(*) FROM replica"
                " WHERE seen_at > now() - make_interval(secs => %s)",
                (self.ttl,),
            )
            rows = db.execute(
                "SELECT shard, owner, epoch, extract(epoch FROM expires_at)::float8"
                " FROM shard_lease ORDER BY shard"
            ).fetchall()
        return Round(tuple(Lease(*row) for row in rows), float(now), int(replicas))

    def renew(self, held: Mapping[int, int]) -> dict[int, int]:
        """Extend the rows this owner still holds at their epoch, unexpired; shard → epoch
        of those renewed. A row missing from the answer was lost (or taken over)."""
        if not held:
            return {}
        shards, epochs = list(held), list(held.values())
        rows = self._db.execute(
            "UPDATE shard_lease l SET expires_at = now() + make_interval(secs => %s)"
            " FROM unnest(%s::smallint[], %s::bigint[]) AS h(shard, epoch)"
            " WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.owner = %s"
            " AND l.expires_at > now() RETURNING l.shard, l.epoch",
            (self.ttl, shards, epochs, self.owner),
        ).fetchall()
        return {int(shard): int(epoch) for shard, epoch in rows}

    def claim(self, shards: Iterable[int]) -> dict[int, int]:
        """Take over free or expired rows with the next epoch; shard → epoch of those won.
        Rows another transaction holds locked (a peer claiming, a commit checking its fence)
        are skipped, never waited for: they are retried next round."""
        wanted = sorted(shards)
        if not wanted:
            return {}
        rows = self._db.execute(
            "UPDATE shard_lease SET owner = %s, epoch = epoch + 1,"
            " expires_at = now() + make_interval(secs => %s)"
            " WHERE shard IN (SELECT shard FROM shard_lease WHERE shard = ANY(%s::smallint[])"
            "   AND (owner IS NULL OR expires_at IS NULL OR expires_at <= now())"
            "   FOR UPDATE SKIP LOCKED)"
            " RETURNING shard, epoch",
            (self.owner, self.ttl, wanted),
        ).fetchall()
        return {int(shard): int(epoch) for shard, epoch in rows}

    def release(self, held: Mapping[int, int], *, leaving: bool = False) -> int:
        """Let go of rows this owner holds at their epoch, and tell the peers; how many.
        `leaving` also ends this replica's heartbeat in the same transaction, so peers woken
        by the notification already count one replica fewer (and claim a bigger share)."""
        if not held and not leaving:
            return 0
        db = self._db
        with db.transaction():
            if leaving:
                db.execute("DELETE FROM replica WHERE owner = %s", (self.owner,))
            count = db.execute(
                "UPDATE shard_lease l SET owner = NULL, expires_at = NULL"
                " FROM unnest(%s::smallint[], %s::bigint[]) AS h(shard, epoch)"
                " WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.owner = %s",
                (list(held), list(held.values()), self.owner),
            ).rowcount
            if count or leaving:
                db.execute(f"NOTIFY {CHANNEL}")  # delivered at commit
        return count

    def tell_pause(self, seconds: float) -> None:
        """Ask the fleet to pause its API requests for `seconds` (relative: no clocks meet)."""
        self._db.execute("SELECT pg_notify(%s, %s)", (PAUSE_CHANNEL, f"{self.owner} {seconds}"))

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """Sleep until a notification arrives or `timeout` seconds pass; (channel, payload)
        of those that came, none when the time ran out."""
        listen = self._listen
        if listen is None or listen.closed:
            raise psycopg.OperationalError("the listen connection is closed")
        return [
            (note.channel, note.payload)
            for note in listen.notifies(timeout=max(0.0, timeout), stop_after=1)
        ]


def _connect(url: str) -> psycopg.Connection[Any]:
    kwargs = connect_kwargs()
    # A renewal must never wait for long: not on a row lock (a commit's FOR SHARE takes
    # milliseconds), not on a server that stopped answering (tcp_user_timeout fails a
    # blackholed write instead of retransmitting for minutes).
    kwargs["options"] = "-c lock_timeout=2000 -c statement_timeout=4000"
    kwargs["tcp_user_timeout"] = 4000
    return psycopg.connect(url, **kwargs)


def _one(db: psycopg.Connection[Any], sql: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    row = db.execute(sql, args).fetchone()
    assert row is not None  # an aggregate always answers one row
    return tuple(row)
