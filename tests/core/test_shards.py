"""Shard leases decided: the shard of a session, fair shares, and plans that never take a
held shard, never exceed the share and, applied round after round, own every shard."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.shards import (
    LEADER,
    SHARDS,
    Lease,
    claimed,
    fair_share,
    owned,
    plan,
    renewed,
    shard_of,
)

TTL = 15.0
OWNERS = ["a", "b", "c", "d", "e"]

sids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).map(lambda h: "ES" + h)
owners = st.sampled_from([None, *OWNERS])
times = st.floats(min_value=0.0, max_value=100.0)


@st.composite
def tables(draw: st.DrawFn) -> list[Lease]:
    """A lease table as read: every shard and the leader, owned, free or expired at random."""
    rows = []
    for shard in [LEADER, *range(SHARDS)]:
        owner = draw(owners)
        expires = None if owner is None else draw(times)
        rows.append(Lease(shard, owner, draw(st.integers(0, 5)), expires))
    return rows


# ── shard_of and fair_share ─────────────────────────────────────────────────────────────────


@given(sids)
def test_shard_of_is_the_md5_the_database_computes(sid: str) -> None:
    expected = int(hashlib.md5(sid.encode()).hexdigest()[:4], 16) % 256  # noqa: S324
    assert shard_of(sid) == expected
    assert 0 <= shard_of(sid) < SHARDS


def test_fair_share_is_the_ceiling() -> None:
    assert [fair_share(n) for n in (0, 1, 2, 3, 4, 255, 256, 300)] == [
        256, 256, 128, 86, 64, 2, 1, 1,
    ]  # fmt: skip


# ── one plan ─────────────────────────────────────────────────────────────────────────────────


@given(tables(), st.sampled_from(OWNERS), times, st.integers(1, 6))
def test_a_plan_never_claims_a_held_shard_nor_exceeds_the_share(
    leases: list[Lease], me: str, now: float, replicas: int
) -> None:
    made = plan(leases, me, now, replicas)
    by_shard = {lease.shard: lease for lease in leases}
    for shard in made.claim:
        assert not by_shard[shard].held(now)
    for shard in (*made.renew, *made.release):
        assert by_shard[shard].held_by(me, now)
    kept = {*made.claim, *made.renew} - {LEADER}
    assert len(kept) <= fair_share(replicas)
    assert not set(made.claim) & set(made.renew)
    assert not set(made.release) & ({*made.claim, *made.renew})


def test_the_excess_over_a_share_is_released() -> None:
    leases = [Lease(shard, "a", 1, 50.0) for shard in range(SHARDS)]
    made = plan(leases, "a", 10.0, 2)
    assert len(made.renew) == 128
    assert len(made.release) == 128
    assert made.claim == ()


def test_the_leader_lease_is_claimed_when_free_and_not_counted() -> None:
    leases = [Lease(LEADER, None, 0, None), *(Lease(s, "a", 1, 50.0) for s in range(SHARDS))]
    made = plan(leases, "a", 10.0, 1)
    assert made.claim == (LEADER,)
    assert len(made.renew) == SHARDS
    held = [Lease(LEADER, "b", 3, 50.0)]
    assert LEADER not in plan(held, "a", 10.0, 1).claim
    assert plan([Lease(LEADER, "b", 3, 5.0)], "a", 10.0, 1).claim == (LEADER,)


# ── claimed and renewed: the rules the SQL follows ──────────────────────────────────────────


@given(owners, st.integers(0, 100), st.none() | times, times)
def test_a_takeover_bumps_the_epoch_and_never_takes_a_held_row(
    owner: str | None, epoch: int, expires: float | None, now: float
) -> None:
    lease = Lease(7, owner, epoch, expires)
    taken = claimed(lease, "me", now, TTL)
    if lease.held(now):
        assert taken is None
    else:
        assert taken == Lease(7, "me", epoch + 1, now + TTL)


@given(owners, st.integers(0, 100), st.integers(0, 100), st.none() | times, times)
def test_renewal_needs_owner_epoch_and_an_unexpired_row(
    owner: str | None, epoch: int, mine: int, expires: float | None, now: float
) -> None:
    lease = Lease(7, owner, epoch, expires)
    kept = renewed(lease, "a", mine, now, TTL)
    if owner == "a" and epoch == mine and expires is not None and expires > now:
        assert kept == Lease(7, "a", epoch, now + TTL)
    else:
        assert kept is None


# ── rounds: replicas applying plans against one table ───────────────────────────────────────


def _round(table: dict[int, Lease], live: list[str], now: float) -> None:
    """Each live replica reads the table, plans and applies, one after another (the database
    serialises them; a claim lost to an earlier replica this round is refused)."""
    for me in live:
        made = plan(list(table.values()), me, now, len(live))
        for shard in made.release:
            table[shard] = Lease(shard, None, table[shard].epoch, None)
        for shard in made.renew:
            kept = renewed(table[shard], me, table[shard].epoch, now, TTL)
            assert kept is not None  # nobody else can have taken it meanwhile
            table[shard] = kept
        for shard in made.claim:
            if (taken := claimed(table[shard], me, now, TTL)) is not None:
                table[shard] = taken


def _fresh() -> dict[int, Lease]:
    return {shard: Lease(shard, None, 0, None) for shard in [LEADER, *range(SHARDS)]}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=6))
def test_rounds_converge_to_every_shard_owned_within_shares(fleet_sizes: list[int]) -> None:
    """Replicas join and leave (a leaver simply stops renewing); after each change and a few
    rounds every shard and the leader are owned, by live replicas only, each within its share."""
    table = _fresh()
    now = 0.0
    for size in fleet_sizes:
        live = OWNERS[:size]
        for _ in range(4):
            now += 5.0  # the renewal interval: a leaver's rows expire within three rounds
            _round(table, live, now)
        holders = [lease.owner for lease in table.values() if lease.held(now)]
        assert len(holders) == SHARDS + 1
        assert set(holders) <= set(live)
        for me in live:
            mine = owned(table.values(), me, now)
            assert len(mine.keys() - {LEADER}) <= fair_share(size)


def test_a_crashed_replicas_shards_are_taken_with_the_next_epoch() -> None:
    table = _fresh()
    _round(table, ["a", "b"], 0.0)
    lost = owned(table.values(), "b", 0.0)
    _round(table, ["a"], 5.0)  # b is gone; its rows are still held until they expire
    assert owned(table.values(), "b", 5.0) == lost
    _round(table, ["a"], 20.0)
    mine = owned(table.values(), "a", 20.0)
    assert len(mine) == SHARDS + 1
    for shard, epoch in lost.items():
        assert mine[shard] == epoch + 1
