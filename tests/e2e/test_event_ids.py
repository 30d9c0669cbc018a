"""Event ids are scoped to their state file (issue 7, point 3): two deployments watching the
same sessions never share a `webhook-id`, while one state file keeps its ids across restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import watches_of
from tests.e2e.helpers import Proc, outbox_rows, start, write_config

pytestmark = pytest.mark.slow


def deployment_of(state: Path) -> str:
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        (value,) = db.execute("SELECT value FROM meta WHERE key='deployment_id'").fetchone()
    return str(value)


async def rows_of_type(state: Path, kind: str, count: int) -> list[str]:
    """Event ids of `kind` in a live process's outbox, once there are `count` of them."""
    async with asyncio.timeout(20):
        while True:
            ids = [row[0] for row in outbox_rows(state) if row[1] == kind]
            if len(ids) >= count:
                return ids
            await asyncio.sleep(0.05)


async def test_two_state_files_on_the_same_sessions_never_share_an_id(
    simulator, tmp_path: Path, unused_tcp_port_factory
) -> None:
    sim = await simulator(2)
    for key in sim.keys:
        sim.sim.set(
            key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None
        )
    states = [tmp_path / "east.db", tmp_path / "west.db"]
    procs: list[Proc] = []
    try:
        for n, state in enumerate(states):
            config = write_config(
                tmp_path / f"c{n}.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=state
            )  # no sinks: alerts go to the log sink, and stay in each outbox as delivered
            procs.append(await start(config, unused_tcp_port_factory(), tmp_path / f"{n}.log"))
        for proc in procs:
            await proc.wait_ready()
        await asyncio.sleep(1.5)  # both have baselined every session
        for key in sim.keys:
            sim.sim.set(key, status="Closed")
        changed = [await rows_of_type(s, "session.status_changed", 2) for s in states]
        sim.sim.token = "only-the-new-token"  # the API now rejects both deployments' token
        refused = [await rows_of_type(s, "api.auth_failed", 1) for s in states]
    finally:
        codes = [await proc.stop() for proc in procs]
    assert codes == [0, 0], [proc.output() for proc in procs]
    assert deployment_of(states[0]) != deployment_of(states[1])
    east, west = (set(ids) for ids in changed)
    assert len(east) == len(west) == 2
    assert not east & west, "the same transition in two deployments must get two ids"
    assert refused[0] != refused[1], "api.auth_failed must differ between installs"


async def test_one_state_file_keeps_its_deployment_and_ids_across_restarts(
    simulator, tmp_path: Path, unused_tcp_port: int
) -> None:
    sim = await simulator(1)
    (key,) = sim.keys
    sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)
    state = tmp_path / "spmon.db"
    config = write_config(
        tmp_path / "c.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=state
    )
    first = await start(config, unused_tcp_port, tmp_path / "1.log")
    await first.wait_ready()
    made = deployment_of(state)
    await asyncio.sleep(1.5)
    sim.sim.set(key, status="Closed")
    before = await rows_of_type(state, "session.status_changed", 1)
    assert await first.stop() == 0, first.output()
    second = await start(config, unused_tcp_port, tmp_path / "2.log")
    try:
        await second.wait_ready()
        await asyncio.sleep(1.5)  # more polls of the unchanged session: nothing new
    finally:
        assert await second.stop() == 0, second.output()
    assert deployment_of(state) == made
    assert [r[0] for r in outbox_rows(state) if r[1] == "session.status_changed"] == before
