"""One spmon per state file, whatever the path says (issue 7, point 10): the lock is on the
database file itself, so a symlink or a deleted side file cannot let a second process in, and
a refused start leaves the running process's in-flight deliveries alone."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import watches_of
from tests.e2e.helpers import Proc, outbox_rows, start, write_config
from tests.sinks.sinkkit import Hit

pytestmark = pytest.mark.slow


def leases(state: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        return db.execute("SELECT state, lease_owner FROM outbox ORDER BY id").fetchall()


async def refused(proc: Proc) -> str:
    async with asyncio.timeout(20):
        code = await proc.process.wait()
    assert code == 2, proc.output()
    return proc.output()


async def test_a_second_process_is_refused_through_a_symlink_or_without_a_lock_file(
    simulator, endpoint, tmp_path: Path, unused_tcp_port_factory
) -> None:
    sim = await simulator(1)
    (key,) = sim.keys
    sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)
    answer = asyncio.Event()

    async def slow(_hit: Hit) -> web.StreamResponse:
        await answer.wait()  # the delivery stays in flight (leased) until the test says so
        return web.Response(status=204)

    hook = await endpoint(slow)
    state = tmp_path / "data" / "spmon.db"
    link = tmp_path / "elsewhere" / "spmon.db"
    link.parent.mkdir()
    sinks = [{
        "name": "hook", "type": "webhook", "url": f"{hook.url}/hook", "timeout": "60s",
        "allow_private": True, "unsigned": True,
    }]  # fmt: skip

    def config(name: str, path: Path) -> Path:
        return write_config(
            tmp_path / f"{name}.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=path,
            sinks=sinks,
        )  # fmt: skip

    configs = {"real": config("real", state), "link": config("link", link)}
    first = await start(configs["real"], unused_tcp_port_factory(), tmp_path / "1.log")
    try:
        await first.wait_ready()
        link.symlink_to(state)
        await asyncio.sleep(1.5)  # baselined
        sim.sim.set(key, status="Closed")
        await hook.until(lambda r: len(r.hits) == 1, what="the delivery in flight")
        leased = leases(state)
        assert [row[0] for row in leased] == ["pending"]
        assert leased[0][1] is not None

        via_link = await start(configs["link"], unused_tcp_port_factory(), tmp_path / "2.log")
        assert "in use by another spmon process" in await refused(via_link)
        for stray in state.parent.glob("*.lock"):  # an older spmon's side file, if any
            stray.unlink()
        again = await start(configs["real"], unused_tcp_port_factory(), tmp_path / "3.log")
        assert "in use by another spmon process" in await refused(again)
        assert leases(state) == leased, "a refused start must not void the running lease"

        answer.set()
        async with asyncio.timeout(20):
            while outbox_rows(state)[0][2] != "delivered":
                await asyncio.sleep(0.05)
    finally:
        answer.set()
        assert await first.stop() == 0, first.output()
    assert len(hook.hits) == 1, "one delivery in flight, never two"
    assert not list(state.parent.glob("*.lock"))
