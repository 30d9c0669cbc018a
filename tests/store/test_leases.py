"""Shard leases on a real PostgreSQL: the SQL's owner and epoch checks (`LeaseTable`), and
Leasers sharing the shards (fair shares, takeover, NOTIFY on release, standing down)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import pytest
from pydantic import SecretStr

from monitor.core.shards import LEADER, SHARDS
from monitor.leasing import Change, Leaser, owner_id
from monitor.store import migrate
from monitor.store.postgres.leases import LeaseTable
from tests.storekit import execute, query

FAST = {"ttl": 4.0, "every": 0.5, "margin": 1.0}
"""Short leases, so a test sees several rounds; the ratios are the production ones'."""


async def until(condition: Callable[[], bool], what: str, *, cap: float = 60.0) -> None:
    """Wait for `condition`; the cap only turns a hang into a failure naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"never: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def url(postgres_url: SecretStr) -> str:
    await migrate(postgres_url)
    return postgres_url.get_secret_value()


def shards(leaser: Leaser) -> set[int]:
    return set(leaser.owned()) - {LEADER}


# ── the SQL ──────────────────────────────────────────────────────────────────────────────────


def test_a_takeover_after_expiry_bumps_the_epoch_and_the_old_owner_cannot_renew(
    url: str,
) -> None:
    with LeaseTable(url, "a", ttl=30) as a, LeaseTable(url, "b", ttl=30) as b:
        assert a.claim([5, 6]) == {5: 1, 6: 1}
        assert b.claim([5, 6, 7]) == {7: 1}  # held rows are not taken
        assert b.release({5: 1}) == 0  # nor let go of by someone else
        execute(SecretStr(url), "UPDATE shard_lease SET expires_at = now() WHERE shard = 5")
        assert b.claim([5]) == {5: 2}
        assert a.renew({5: 1, 6: 1}) == {6: 1}  # 5 is b's now: refused
        assert a.renew({6: 0}) == {}  # a stale epoch is refused too
        assert a.release({5: 1, 6: 1}) == 1
        rows = query(SecretStr(url), "SELECT shard, owner, epoch FROM shard_lease"
                     " WHERE shard IN (5, 6, 7) ORDER BY shard")  # fmt: skip
        assert rows == [(5, "b", 2), (6, None, 1), (7, "b", 1)]


def test_a_read_counts_live_replicas_by_the_servers_clock(url: str) -> None:
    with LeaseTable(url, "a", ttl=30) as a, LeaseTable(url, "b", ttl=30) as b:
        assert a.read().replicas == 1
        assert b.read().replicas == 2
        execute(
            SecretStr(url), "UPDATE replica SET seen_at = now() - interval '31 s' WHERE owner='a'"
        )
        current = b.read()
        assert current.replicas == 1
        assert len(current.leases) == SHARDS + 1
    assert query(SecretStr(url), "SELECT count(*) FROM replica") == [(0,)]  # gone with them


def test_owner_ids_are_unique_per_process_and_call() -> None:
    first, second = owner_id(), owner_id()
    assert first != second
    host, pid, _ = first.split(":")
    assert pid.isdigit() and host


# ── Leasers ──────────────────────────────────────────────────────────────────────────────────


async def test_two_leasers_split_the_shards_and_one_leads(url: str) -> None:
    async with Leaser(url, **FAST) as a:
        assert len(shards(a)) == SHARDS and a.is_leader  # alone: everything
        async with Leaser(url, **FAST) as b:
            await until(lambda: len(shards(a)) == 128 and len(shards(b)) == 128, "a fair split")
            assert not shards(a) & shards(b)
            assert a.is_leader != b.is_leader
            leader = a if a.is_leader else b
            assert leader is a  # the leader does not move while its holder lives
        await until(lambda: len(shards(a)) == SHARDS, "a takes b's shards back")


async def test_three_leasers_hold_every_shard_within_their_shares(url: str) -> None:
    async with Leaser(url, **FAST) as a, Leaser(url, **FAST) as b, Leaser(url, **FAST) as c:
        fleet = (a, b, c)

        def settled() -> bool:
            held = [shards(x) for x in fleet]
            return sum(map(len, held)) == SHARDS and all(len(h) <= 86 for h in held)

        await until(settled, "every shard held, none over ceil(256/3)")
        assert sum(x.is_leader for x in fleet) == 1


async def test_a_release_is_notified_and_a_peer_takes_the_shards_before_its_next_round(
    url: str,
) -> None:
    """b renews every 30 s: only the NOTIFY can make it claim a's shards sooner."""
    slow = {"ttl": 60.0, "every": 30.0, "margin": 5.0}
    async with Leaser(url, **FAST) as a, Leaser(url, **slow) as b:
        await until(lambda: len(shards(b)) == 128, "b gets its share (a released on a NOTIFY)")
        rounds = b.rounds
        await a.__aexit__(None, None, None)
        await until(lambda: len(shards(b)) == SHARDS, "b takes a's shards", cap=20.0)
        assert b.rounds == rounds + 1  # one round, woken by the notification


async def test_a_takeover_after_a_crash_bumps_every_epoch(url: str) -> None:
    async with Leaser(url, **FAST) as b:
        with LeaseTable(url, "crashed", ttl=4) as crashed:
            execute(SecretStr(url), "UPDATE shard_lease SET owner='crashed', epoch=epoch+1,"
                  " expires_at = now() + interval '2 s'")  # fmt: skip
            before = {lease.shard: lease.epoch for lease in crashed.read().leases}
        # b holds nothing until the crashed owner's rows expire; then it takes them all
        await until(lambda: not b.owned(), "b hears it lost them")
        await until(lambda: len(shards(b)) == SHARDS, "b takes the expired shards")
        assert {s: e - 1 for s, e in b.owned().items()} == before


async def test_a_lost_row_is_reported_and_not_renewed(url: str) -> None:
    changes: list[Change] = []
    async with Leaser(url, on_change=changes.append, **FAST) as a:
        await until(lambda: bool(changes), "the first gain reaches the loop")
        assert len(changes[0].gained) == SHARDS + 1
        execute(SecretStr(url), "UPDATE shard_lease SET owner='thief', epoch=epoch+1,"
              " expires_at = now() + interval '1 hour' WHERE shard = 3")  # fmt: skip
        await until(lambda: 3 not in a.owned(), "shard 3 lost")
        await until(lambda: any(3 in c.lost for c in changes), "the loss reaches the loop")
    assert query(SecretStr(url), "SELECT owner FROM shard_lease WHERE shard = 3") == [("thief",)]
    assert query(SecretStr(url), "SELECT count(*) FROM shard_lease WHERE owner IS NOT NULL") == [
        (1,)  # the rest released on exit
    ]


async def test_a_leaser_that_cannot_renew_stands_down_by_its_own_clock(url: str) -> None:
    """The lease table locked by someone else: every renewal times out, and before the TTL is
    over (by the monotonic clock, with the margin) the leaser owns nothing."""
    changes: list[Change] = []
    async with Leaser(url, on_change=changes.append, **FAST) as a:
        assert len(a.owned()) == SHARDS + 1
        with psycopg.connect(url) as blocker:
            blocker.execute("LOCK TABLE shard_lease IN ACCESS EXCLUSIVE MODE")
            await until(lambda: a.owned() == {}, "a stands down")
            await until(lambda: any(len(c.lost) == SHARDS + 1 for c in changes), "loss heard")
            # still inside the server's TTL: nobody could have taken a shard yet
            blocker.rollback()
        await until(lambda: len(a.owned()) == SHARDS + 1, "a claims them again")
        assert all(epoch == 2 for epoch in a.owned().values())  # a new epoch: a takeover


async def test_a_429_pause_is_told_to_the_peers_not_back_to_the_teller(url: str) -> None:
    heard_a: list[float] = []
    heard_b: list[float] = []
    async with (
        Leaser(url, on_pause=heard_a.append, **FAST) as a,
        Leaser(url, on_pause=heard_b.append, **FAST),
    ):
        a.tell_pause(7.5)
        await until(lambda: heard_b == [7.5], "b hears a's pause")
    assert heard_a == []
