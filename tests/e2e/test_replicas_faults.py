"""The fleet under the faults of issue 12 that test_replicas.py does not cover: a rolling
restart of every replica while sessions change (each transition delivered, once, under one
id), one replica cut off from PostgreSQL (it lets go, says so, the others carry on, it comes
back), and the fleet's request rate held to the global `api.rate_limit` at the simulator."""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web
from pydantic import SecretStr

from monitor.core.shards import SHARDS
from monitor.simulator import Simulator, make_keys
from tests.conftest import watches_of
from tests.e2e.fleetkit import (
    CAP,
    LOCAL_UNSIGNED,
    Fleet,
    Proxy,
    all_held_by,
    changes,
    events,
    fleet_of,
    leases,
    rows_of,
    scene,
    transition_rows,
    transitions,
    until,
)
from tests.e2e.helpers import write_config
from tests.simcount import counted as serve_counted
from tests.sinks.sinkkit import Hit, Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SESSIONS = 24


@dataclass
class Changer:
    """Moves every session to status "Round n", one round at a time: the next only once every
    session's change of this one was delivered, so none can be missed by being overwritten."""

    sim: Simulator
    rec: Receiver
    rounds: int = 0

    def next(self) -> None:
        self.rounds += 1
        for key in self.sim.keys:
            self.sim.set(key, status=f"Round {self.rounds}")

    async def delivered(self) -> None:
        expected = self.expected()
        await self.rec.until(
            lambda r: transitions(r) >= expected, within=CAP, what=f"round {self.rounds}"
        )

    async def round(self) -> None:
        self.next()
        await self.delivered()

    async def until_stopped(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.round()

    def expected(self) -> set[tuple[str, str]]:
        return {
            (k.session_sid, f"Round {n}") for k in self.sim.keys for n in range(1, self.rounds + 1)
        }

    def assert_once_each(self, url: SecretStr) -> None:
        """Every transition delivered, under one id; no id for two transitions; nothing else."""
        ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        for sid, current, event_id in changes(self.rec):
            ids[(sid, current)].add(event_id)
        assert set(ids) == self.expected()
        twice = {t: i for t, i in ids.items() if len(i) > 1}
        assert not twice, f"transitions delivered under two ids: {twice}"
        assert len(set().union(*ids.values())) == len(ids)
        assert transition_rows(url) == len(ids)  # recorded once each, by one owner


def baselined(url: SecretStr) -> bool:
    with psycopg.connect(url.get_secret_value()) as conn:
        row = conn.execute("SELECT count(*) FROM session WHERE status = 'Scheduled'").fetchone()
    return row is not None and row[0] == SESSIONS


@pytest.fixture
async def setup(simulator: Any, endpoint: Any, tmp_path: Path) -> tuple[Simulator, Receiver, Path]:
    sim, rec, config = await scene(simulator, endpoint, tmp_path, SESSIONS)
    return sim.sim, rec, config


async def test_rolling_restart_of_every_replica_delivers_each_transition_once(
    setup: tuple[Simulator, Receiver, Path], postgres_url: SecretStr, tmp_path: Path,
    unused_tcp_port_factory: Any,
) -> None:  # fmt: skip
    sim, rec, config = setup
    urls: list[str | None] = [None] * 3
    async with fleet_of(config, postgres_url, tmp_path, unused_tcp_port_factory, urls) as fleet:
        await until(lambda: baselined(postgres_url), "every session baselined")
        changer = Changer(sim, rec)
        stop = asyncio.Event()
        changing = asyncio.create_task(changer.until_stopped(stop))
        for old in list(fleet.procs):
            assert await old.stop(within=CAP) == 0, old.output()
            await fleet.split()  # the other two took its shards
            new = await fleet.start()
            await fleet.split()  # and the new one holds its part
            assert leases(postgres_url).get(new.process.pid, 0) > 0
        stop.set()
        await changing
        await changer.round()  # one more, all on the new processes
        changer.assert_once_each(postgres_url)
        print(f"rolling restart: {changer.rounds} rounds of {SESSIONS} changes, each once")


async def test_a_replica_cut_off_from_postgres_lets_go_and_the_others_carry_on(
    setup: tuple[Simulator, Receiver, Path], postgres_url: SecretStr, tmp_path: Path,
    unused_tcp_port_factory: Any,
) -> None:  # fmt: skip
    sim, rec, config = setup
    parts = postgres_url.get_secret_value().split("@")[-1].split("/")[0]
    host, _, port = parts.partition(":")
    async with Proxy((host, int(port or 5432))) as proxy:
        urls = [proxy.url(postgres_url), None, None]
        async with fleet_of(config, postgres_url, tmp_path, unused_tcp_port_factory, urls) as fleet:
            await cut_and_restore(fleet, proxy, Changer(sim, rec), postgres_url)


async def cut_and_restore(fleet: Fleet, proxy: Proxy, changer: Changer, url: SecretStr) -> None:
    cut, *others = fleet.procs
    pid, peers = cut.process.pid, {p.process.pid for p in others}
    await until(lambda: baselined(url), "every session baselined")
    await changer.round()
    had = leases(url)[pid]
    since = len(cut.output())
    proxy.cut()
    await changer.round()  # made after the cut: the others deliver it
    await until(all_held_by(url, peers), "the two others take every shard")
    await until(lambda: rows_of(url, pid) == 0, "no lease row left naming the cut replica")
    await changer.round()
    told = [e for e in events(cut, since) if e["event"].startswith("lease.")]
    assert any(e["event"] == "lease.round_failed" for e in told), cut.output()[since:]
    assert any(e["event"] == "lease.stood_down" for e in told), cut.output()[since:]
    assert cut.process.returncode is None  # it runs on, waiting for its database
    assert proxy.refused > 0  # and keeps asking for it
    print(f"cut replica: held {had} shards; said {sorted({e['event'] for e in told})}")

    proxy.restore()
    await until(all_held_by(url, peers | {pid}), "the cut replica rejoins")
    await changer.round()
    changer.assert_once_each(url)


async def test_the_fleet_keeps_to_the_global_rate_limit_at_the_simulator(
    endpoint: Any, postgres_url: SecretStr, tmp_path: Path, unused_tcp_port_factory: Any
) -> None:
    limit, sessions, window = 10.0, 60, 20.0
    sim = Simulator(make_keys(sessions, seed=1), evolve=False)
    rec = await endpoint()
    for key in sim.keys:
        sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False)
    async with serve_counted(sim, every=True) as counted:
        config = write_config(
            tmp_path / "c.yaml", api_url=counted.url, watches=watches_of(sim.keys),
            state=tmp_path / "x.db",
            sinks=[{"name": "hook", "type": "webhook", "url": rec.url, **LOCAL_UNSIGNED}],
            api={"base_url": counted.url, "rate_limit": limit, "timeout": "5s", "retries": 0},
        )  # fmt: skip
        urls: list[str | None] = [None] * 3
        async with fleet_of(config, postgres_url, tmp_path, unused_tcp_port_factory, urls) as fleet:
            await until(lambda: shares(fleet) == leases(postgres_url), "each replica's budget set")
            held = leases(postgres_url)
            start = asyncio.get_running_loop().time()
            await asyncio.sleep(window)  # the window counted; nothing asserts how long it took
            end = asyncio.get_running_loop().time()
            assert leases(postgres_url) == held  # no reshard (no fresh bucket) inside it
    made = counted.between(start, end)
    per_second = [counted.between(start + i, start + i + 1) for i in range(int(window))]
    # A replica's bucket holds max(rate, 1) requests (aiolimiter: capacity = its rate when it
    # is at least 1/s), full at the window's start: that many go at once beyond its rate. The
    # three shares add up to the limit, so do their buckets: one second's worth. And a request
    # taken from a bucket just before the window opened may be answered inside it: one more
    # each (loopback answers in milliseconds, well under a slot of 1/rate ~ 0.3 s).
    bound = limit * (end - start) + limit + 3
    print(f"fleet: {made} requests in {end - start:.1f} s = {made / (end - start):.2f}/s "
          f"(limit {limit:g}/s, demand {sessions}/s, bound {bound:.0f}); "
          f"per second {per_second}")  # fmt: skip
    assert made <= bound
    assert made >= 0.5 * limit * (end - start)  # the budget is used, not merely not exceeded


def shares(fleet: Fleet) -> dict[int, int]:
    """pid → shards each replica last set its API budget for (its `api.rate_share` line)."""
    told: dict[int, int] = {}
    for proc in fleet.live():
        for e in events(proc):
            if e["event"] == "api.rate_share":
                told[proc.process.pid] = round(e["share"] * SHARDS)
    return told


async def test_a_stopping_replica_hands_its_shards_over_before_its_last_delivery_attempt(
    simulator: Any, endpoint: Any, postgres_url: SecretStr, tmp_path: Path,
    unused_tcp_port_factory: Any,
) -> None:  # fmt: skip
    """SIGTERM: polls stop, the leases go at once, and only then the drain, which may take
    its 10 s deadline (a receiver that never answers here): the peers need not wait for it."""

    async def hang(hit: Hit) -> web.StreamResponse:
        return await hit.hang()

    handle, rec, config = await scene(simulator, endpoint, tmp_path, 3, hang, timeout="30s")
    async with fleet_of(config, postgres_url, tmp_path, unused_tcp_port_factory, [None]) as fleet:
        (replica,) = fleet.procs
        for key in handle.sim.keys:
            handle.sim.set(key, status="Round 1")
        await rec.until(lambda r: len(r.hits) > 0, within=CAP, what="a delivery in flight")
        replica.process.send_signal(signal.SIGTERM)
        await until(lambda: rows_of(postgres_url, replica.process.pid) == 0, "leases released")
        assert replica.process.returncode is None  # still draining: released first
        assert await asyncio.wait_for(replica.process.wait(), CAP) == 0, replica.output()
    at = {e["event"]: e["timestamp"] for e in events(replica)}
    assert at["lease.released"] < at["service.draining"] < at["service.stopped"]
    print(f"stopping {at['service.stopping']}, released {at['lease.released']}, "
          f"stopped {at['service.stopped']}")  # fmt: skip
