"""Three `spmon run` replicas on one PostgreSQL database, against the simulator, delivering to
a real webhook receiver: they split the shards; SIGKILL one while sessions change and the
others take its shards over (the takeover time is measured and printed), every transition is
delivered, each under one id; SIGSTOP one past its lease and it loses its shards, then after
SIGCONT stands down and writes nothing for them."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from monitor.core.shards import SHARDS
from tests.e2e.fleetkit import CAP, fleet_of, leases, scene, transitions, until
from tests.e2e.helpers import Proc
from tests.sinks.sinkkit import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SESSIONS = 24


@pytest.fixture
async def fleet(
    simulator: Any, endpoint: Any, postgres_url: SecretStr, tmp_path: Path,
    unused_tcp_port_factory: Any,
) -> AsyncIterator[tuple[Any, Receiver, list[Proc]]]:  # fmt: skip
    sim, rec, config = await scene(simulator, endpoint, tmp_path, SESSIONS)
    async with fleet_of(
        config, postgres_url, tmp_path, unused_tcp_port_factory, [None] * 3
    ) as replicas:
        await asyncio.sleep(2.5)  # every session baselined by its owner
        yield sim, rec, replicas.procs


async def test_sigkill_one_replica_the_others_take_over_and_every_transition_arrives(
    fleet: tuple[Any, Receiver, list[Proc]], postgres_url: SecretStr
) -> None:
    sim, rec, procs = fleet
    for key in sim.keys:
        sim.sim.set(key, status="Closed")
    await rec.until(lambda r: len(transitions(r)) == SESSIONS, within=CAP, what="first round")

    victim = max(procs, key=lambda p: leases(postgres_url).get(p.process.pid, 0))
    killed_at = time.monotonic()
    victim.process.send_signal(signal.SIGKILL)
    await victim.process.wait()
    for key in sim.keys:  # while its shards have no owner
        sim.sim.set(key, status="Incident")
    survivors = {p.process.pid for p in procs if p is not victim}

    def taken() -> bool:
        held = leases(postgres_url)
        return set(held) == survivors and sum(held.values()) == SHARDS

    await until(taken, "the survivors hold every shard")
    takeover = time.monotonic() - killed_at
    await rec.until(lambda r: len(transitions(r)) == 2 * SESSIONS, within=CAP, what="second round")
    print(f"takeover after SIGKILL: {takeover:.1f} s (lease TTL 15 s, renewal every 5 s)")

    expected = {(k.session_sid, s) for k in sim.keys for s in ("Closed", "Incident")}
    assert transitions(rec) == expected
    ids = Counter(rec.ids())
    changes = [b for b in rec.bodies() if b["type"] == "session.status_changed"]
    assert len({b["data"]["id"] for b in changes}) == 2 * SESSIONS  # one id per transition
    print(
        f"deliveries: {sum(ids.values())}, ids delivered twice: {sum(n > 1 for n in ids.values())}"
    )

    # SIGTERM one survivor: it releases and notifies, the last one takes its shards at once
    leaving, last = (p for p in procs if p is not victim)
    assert await leaving.stop(within=CAP) == 0, leaving.output()
    exited_at = time.monotonic()
    await until(lambda: leases(postgres_url) == {last.process.pid: SHARDS}, "the last takes all")
    print(f"shards taken after a SIGTERM'd replica exited: {time.monotonic() - exited_at:.2f} s")
    assert await last.stop(within=CAP) == 0, last.output()


async def test_a_stopped_replica_loses_its_shards_and_after_sigcont_writes_nothing_for_them(
    fleet: tuple[Any, Receiver, list[Proc]], postgres_url: SecretStr
) -> None:
    sim, rec, procs = fleet
    frozen = procs[0]
    pid = frozen.process.pid
    had = leases(postgres_url)[pid]
    frozen.process.send_signal(signal.SIGSTOP)
    others = {p.process.pid for p in procs[1:]}

    def taken() -> bool:
        held = leases(postgres_url)
        return set(held) == others and sum(held.values()) == SHARDS

    await until(taken, "the others take the stopped replica's shards")
    for key in sim.keys:  # seen by the new owners only
        sim.sim.set(key, status="Closed")
    await rec.until(lambda r: len(transitions(r)) == SESSIONS, within=CAP, what="the changes")
    await asyncio.sleep(max(0.0, 20.0 - 15.0))  # stopped for about 20 s in all
    before = len(frozen.output())
    frozen.process.send_signal(signal.SIGCONT)

    def stood_down() -> bool:
        told = [json.loads(line) for line in frozen.output()[before:].splitlines() if line]
        return any(
            e["event"] == "lease.stood_down" or (e["event"] == "lease.changed" and e["lost"])
            for e in told
        )

    await until(stood_down, "the resumed replica hears it lost its shards")
    await asyncio.sleep(3.0)  # its stale polls, if any, go to the fence
    with psycopg.connect(postgres_url.get_secret_value()) as conn:
        rows = conn.execute("SELECT count(*) FROM transition").fetchone()
    assert rows is not None and rows[0] == SESSIONS  # one transition per change, no more
    assert transitions(rec) == {(k.session_sid, "Closed") for k in sim.keys}
    assert frozen.process.returncode is None  # it stood down and runs on
    print(f"the stopped replica held {had} shards; after SIGCONT it holds "
          f"{leases(postgres_url).get(pid, 0)}")  # fmt: skip
