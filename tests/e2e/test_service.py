"""The whole service as a subprocess against the simulator, with a real webhook receiver."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.core.events import isoformat
from tests.conftest import watches_of
from tests.e2e.helpers import outbox_rows, start, write_config
from tests.sinks.sinkkit import Receiver

pytestmark = pytest.mark.slow

LOCAL_UNSIGNED = {"allow_private": True, "unsigned": True}
"""The receiver is on loopback and checks no signature: both are explicit opt-ins."""


async def received(rec: Receiver, count: int, *, within: float = 20.0) -> None:
    await rec.until(lambda r: len(r.hits) >= count, within=within, what=f"{count} deliveries")


async def test_each_expected_event_arrives_once(
    simulator, endpoint, tmp_path: Path, unused_tcp_port: int
) -> None:
    sim = await simulator(3)
    rec = await endpoint()
    a, b, c = sim.keys
    for key in sim.keys:
        sim.sim.set(
            key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None
        )
    state = tmp_path / "spmon.db"
    config = write_config(
        tmp_path / "c.yaml", api_url=sim.url, watches=watches_of(sim.keys, course="BIO101"), state=state,
        sinks=[{"name": "hook", "type": "webhook", "url": rec.url, **LOCAL_UNSIGNED}],
    )  # fmt: skip
    proc = await start(config, unused_tcp_port, tmp_path / "spmon.log")
    try:
        await proc.wait_ready()
        await asyncio.sleep(1.5)  # every session baselined
        deadline = datetime.now(UTC) + timedelta(seconds=2)
        sim.sim.set(a, status="Closed")
        sim.sim.set(b, status="Closed", reviewRequired=True, reviewByDate=isoformat(deadline))
        await received(rec, 4)  # status a, status b, review_required b, review_by_date b
        await received(rec, 5)  # then overdue b, at its deadline
        sim.sim.set(b, reviewed=True)
        await received(rec, 6)
        await asyncio.sleep(2.5)  # a few more poll cycles: nothing new may arrive
        metrics = await proc.metrics()
    finally:
        code = await proc.stop()
    assert code == 0, proc.output()
    kinds = Counter(body["type"] for body in rec.bodies())
    assert kinds == {
        "session.status_changed": 2,
        "session.review_required_changed": 1,
        "session.review_by_date_changed": 1,
        "review.overdue": 1,
        "review.overdue_resolved": 1,
    }
    ids = rec.ids()
    assert len(ids) == len(set(ids)) == 6
    assert all(body["data"]["session"]["labels"] == {"course": "BIO101"} for body in rec.bodies())
    assert all(r[2] == "delivered" for r in outbox_rows(state))
    assert 'spmon_notifications_total{outcome="delivered",sink="hook"} 6.0' in metrics
    assert "spmon_sessions_watched 3.0" in metrics
    assert c.session_sid not in metrics  # no per-session labels


async def test_sigkill_between_change_and_delivery_loses_nothing(
    simulator, endpoint, tmp_path: Path, unused_tcp_port_factory
) -> None:
    sim = await simulator(2)
    hook_port, http_port = unused_tcp_port_factory(), unused_tcp_port_factory()
    key = sim.keys[0]
    for k in sim.keys:  # no deadline anywhere: only the change below may raise events
        sim.sim.set(k, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)
    state = tmp_path / "spmon.db"
    url = f"http://127.0.0.1:{hook_port}/hook"  # nobody listens yet: deliveries fail
    config = write_config(
        tmp_path / "c.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=state,
        sinks=[{"name": "hook", "type": "webhook", "url": url, **LOCAL_UNSIGNED}],
    )  # fmt: skip
    log = tmp_path / "spmon.log"
    proc = await start(config, http_port, log)
    await proc.wait_ready()
    await asyncio.sleep(1.5)
    sim.sim.set(key, status="Incident", reviewRequired=True)
    async with asyncio.timeout(20):
        while not any(row[3] >= 1 for row in outbox_rows(state)):
            await asyncio.sleep(0.05)
    await proc.stop(signal.SIGKILL)
    before = outbox_rows(state)
    assert {row[1] for row in before} == {
        "session.status_changed",
        "session.review_required_changed",
    }
    assert all(row[2] == "pending" for row in before)

    rec = await endpoint(port=hook_port)
    proc = await start(config, http_port, log)
    try:
        await proc.wait_ready()
        await received(rec, 2, within=30)
        await asyncio.sleep(2.5)  # more polls: the change must not be detected a second time
    finally:
        assert await proc.stop() == 0, proc.output()
    assert sorted(rec.ids()) == sorted(row[0] for row in before)
    assert [row[0] for row in outbox_rows(state)] == [row[0] for row in before]


async def test_a_second_process_on_the_same_state_refuses_to_start(
    simulator, tmp_path: Path, unused_tcp_port_factory
) -> None:
    sim = await simulator(1)
    config = write_config(
        tmp_path / "c.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=tmp_path / "s.db"
    )
    first = await start(config, unused_tcp_port_factory(), tmp_path / "1.log")
    try:
        await first.wait_ready()
        second = await start(config, unused_tcp_port_factory(), tmp_path / "2.log")
        async with asyncio.timeout(20):
            code = await second.process.wait()
    finally:
        await first.stop()
    assert code == 2
    assert "in use by another spmon process" in second.output()
