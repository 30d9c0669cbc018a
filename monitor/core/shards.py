"""Shard leases decided: which shard a session is in, and what a replica claims, renews and
lets go of, given the lease rows it just read.

Sessions hash into `SHARDS` fixed shards; several replicas share them through one lease row
per shard (owner, epoch, expiry). The database applies a plan with owner and epoch checks of
its own (`store/postgres/leases.py`), so a plan made from rows that are already stale can
lose a race, never win a wrong one. `claimed` and `renewed` are the rules that SQL follows,
spelled as data so they are tested here. Times are the database server's seconds, read with
the rows: no replica's clock decides an expiry.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "LEADER",
    "SHARDS",
    "Lease",
    "Plan",
    "claimed",
    "fair_share",
    "owned",
    "plan",
    "renewed",
    "shard_of",
]

SHARDS = 256
"""Fixed for the life of a database: the `shard` columns are computed with it."""
LEADER = -1
"""The singleton lease (discovery, digests, fleet gauges): claimed like a shard, never counted
toward a replica's share."""


def shard_of(session_sid: str) -> int:
    """The first two bytes of md5(sid) modulo 256: the value PostgreSQL computes for the
    `shard` columns (`schema/postgres/001_init.sql`), so Python and SQL agree."""
    digest = hashlib.md5(session_sid.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:2], "big") % SHARDS


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease row as read: `owner` None (or `expires_at` passed) means free."""

    shard: int
    owner: str | None
    epoch: int
    expires_at: float | None

    def held(self, now: float) -> bool:
        return self.owner is not None and self.expires_at is not None and self.expires_at > now

    def held_by(self, owner: str, now: float) -> bool:
        return self.owner == owner and self.held(now)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do this round; each tuple is in shard order."""

    claim: tuple[int, ...] = ()
    renew: tuple[int, ...] = ()
    release: tuple[int, ...] = ()


def fair_share(replicas: int) -> int:
    """The most shards one of `replicas` live replicas may hold: ceil(256 / replicas), so the
    shares always add up to every shard."""
    return math.ceil(SHARDS / max(1, replicas))


def plan(leases: Sequence[Lease], me: str, now: float, replicas: int) -> Plan:
    """Renew what `me` holds (up to its share; the excess is released so a new replica finds
    free shards), claim free or expired shards up to the share, and the leader lease if it is
    free. `replicas` counts live replicas, `me` included.

    Free shards are taken in an order of this owner's own (highest `_rank` first: rendezvous
    hashing), so replicas starting together mostly reach for different shards instead of
    all racing for shard 0."""
    share = fair_share(replicas)
    mine = sorted(
        (lease.shard for lease in leases if lease.shard != LEADER and lease.held_by(me, now)),
        key=lambda shard: _rank(me, shard),
        reverse=True,
    )
    keep, release = mine[:share], mine[share:]
    free = sorted(
        (lease.shard for lease in leases if lease.shard != LEADER and not lease.held(now)),
        key=lambda shard: _rank(me, shard),
        reverse=True,
    )
    claim = free[: max(0, share - len(keep))]
    for lease in leases:
        if lease.shard == LEADER:
            if lease.held_by(me, now):
                keep.append(LEADER)
            elif not lease.held(now):
                claim.append(LEADER)
    return Plan(tuple(sorted(claim)), tuple(sorted(keep)), tuple(sorted(release)))


def claimed(lease: Lease, me: str, now: float, ttl: float) -> Lease | None:
    """A takeover: the row is free or expired, and becomes `me`'s with the next epoch (a
    former owner's writes, fenced on its epoch, are refused from here on). None if it is held."""
    if lease.held(now):
        return None
    return Lease(lease.shard, me, lease.epoch + 1, now + ttl)


def renewed(lease: Lease, me: str, epoch: int, now: float, ttl: float) -> Lease | None:
    """A renewal: only of a row `me` still holds at `epoch`, unexpired; None otherwise (it was
    lost, and renewing it would resurrect a lease someone else may have taken)."""
    if not lease.held_by(me, now) or lease.epoch != epoch:
        return None
    return Lease(lease.shard, me, epoch, now + ttl)


def owned(leases: Iterable[Lease], me: str, now: float) -> dict[int, int]:
    """shard → epoch of the rows `me` holds (the leader lease included)."""
    return {lease.shard: lease.epoch for lease in leases if lease.held_by(me, now)}


def _rank(owner: str, shard: int) -> int:
    digest = hashlib.blake2b(f"{owner}/{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
