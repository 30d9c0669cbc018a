"""A sink that is down — connection refused, then 500s, then hanging — while another one works:
the working one gets every alert meanwhile, and when the broken one comes back it receives
every alert too, each with the id it had from the start, in order per session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web

from monitor import service
from monitor.settings import Settings
from monitor.simulator import Simulator, make_keys, serve
from monitor.store.base import OutboxEntry
from tests.e2e.helpers import in_process
from tests.sinks.sinkkit import SECRET, Hit, Receiver, bound_socket, verifier

pytestmark = pytest.mark.timeout(120)
SESSIONS = 5


async def until_polled(svc: service.Service, sim: Simulator, status: str) -> None:
    """Every session's committed snapshot shows `status` (the poller saw the change)."""
    async with asyncio.timeout(30):
        while not all(
            e.snapshot is not None and e.snapshot.status == status
            for e in svc.watchset.entries.values()
        ):
            await asyncio.sleep(0.05)


async def outbox(svc: service.Service, sink: str) -> list[OutboxEntry]:
    return await svc.store.entries(state=None, sink=sink, limit=1000)


async def fail(_hit: Hit) -> web.StreamResponse:
    return web.Response(status=500)


async def test_a_sink_that_was_down_receives_everything_with_the_same_ids(tmp_path: Path) -> None:
    keys = make_keys(SESSIONS, seed=5)
    sim = Simulator(keys, evolve=False)
    for key in keys:
        sim.set(key, status="Scheduled", reviewRequired=False)
    rejected: list[str] = []
    steady = Receiver(verifier(SECRET, rejected=rejected))
    await steady.start()
    sock = bound_socket()
    host, port = sock.getsockname()
    flaky = Receiver(fail)
    ok_ids: list[str] = []

    async def ok(hit: Hit) -> web.StreamResponse:
        ok_ids.append(hit.headers["webhook-id"])
        return web.Response(status=204)

    hook = {
        "type": "webhook",
        "secret": SECRET,
        "timeout": "500ms",
        "retry_jitter": 0,
        "allow_private": True,
    }
    try:
        async with serve(sim) as api_url:
            settings = Settings(
                api={"base_url": api_url, "rate_limit": 100},
                poll={"interval": 0.2},
                state={"path": tmp_path / "spmon.db"},
                http={"listen": ""},
                watches=[{**k._asdict(), "labels": {"course": "BIO101"}} for k in keys],  # type: ignore[dict-item]
                sinks=[
                    {**hook, "name": "steady", "url": steady.url},
                    {
                        **hook,
                        "name": "flaky",
                        "url": f"http://{host}:{port}/hook",
                        "retry_schedule": [0] + [0.2] * 40,
                        "breaker_failures": 3,
                        "breaker_cooldown": "300ms",
                    },
                ],
            )
            async with in_process(settings) as svc:
                await until_polled(svc, sim, "Scheduled")
                # Connection refused: the steady sink is served all the same.
                for key in keys:
                    sim.set(key, status="Closed")
                await steady.until(lambda r: len(r.hits) >= SESSIONS, what="round 1")

                # 500s, then a receiver that accepts and never answers.
                await flaky.start(sock)
                for key in keys:
                    sim.set(key, status="Incident")
                await steady.until(lambda r: len(r.hits) >= 2 * SESSIONS, what="round 2")
                await flaky.until(lambda r: len(r.hits) >= 3, what="500s answered")
                flaky.respond = Hit.hang
                hung = len(flaky.hits)
                await flaky.until(lambda r: len(r.hits) >= hung + 2, what="two hung requests")

                # Back to health: everything pending arrives.
                flaky.respond = verifier(SECRET, then=ok, rejected=rejected)
                await flaky.until(lambda r: len(set(ok_ids)) >= 2 * SESSIONS, what="backlog")
                entries = await outbox(svc, "flaky")
                steady_entries = await outbox(svc, "steady")
    finally:
        await flaky.stop()
        await steady.stop()
        sock.close()

    ids = [e.event_id for e in entries]
    assert len(ids) == 2 * SESSIONS
    assert sorted(set(ok_ids)) == sorted(ids)  # nothing lost
    assert set(flaky.ids()) <= set(ids)  # every attempt carried an id it had from the start
    assert sorted(steady.ids()) == sorted(e.event_id for e in steady_entries)
    assert rejected == []  # every request verified with standardwebhooks
    for session in {e.session_sid for e in entries}:
        ours = [e.event_id for e in entries if e.session_sid == session]
        assert [i for i in dict.fromkeys(ok_ids) if i in ours] == ours  # order kept
