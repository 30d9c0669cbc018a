"""`spmon run` as a subprocess on a PostgreSQL database (state.url), against the simulator
with a real webhook receiver: it polls, alerts (an overdue review too), shares the database
with a second process (a replica: the shard leases split the sessions), and a restart resumes from the database without re-baselining
(a change made while it was down is still an alert). The URL's password never reaches a log."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from monitor.core.events import isoformat
from tests.conftest import watches_of
from tests.e2e.helpers import start, write_config
from tests.sinks.sinkkit import Receiver

pytestmark = pytest.mark.slow

LOCAL_UNSIGNED = {"allow_private": True, "unsigned": True}
PASSWORD = "pg-secret-in-the-url"
"""Trust authentication ignores it; the test checks it is never printed."""


def with_password(url: SecretStr) -> str:
    return url.get_secret_value().replace(
        "postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@"
    )


def outbox(url: SecretStr) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.get_secret_value()) as conn:
        return conn.execute(
            "SELECT event_id, event_type, state, attempts FROM outbox ORDER BY id"
        ).fetchall()


async def received(rec: Receiver, count: int, *, within: float = 20.0) -> None:
    await rec.until(lambda r: len(r.hits) >= count, within=within, what=f"{count} deliveries")


async def test_run_on_postgres_alerts_shares_with_a_twin_and_resumes_after_restart(
    simulator, endpoint, postgres_url: SecretStr, tmp_path: Path, unused_tcp_port_factory
) -> None:
    sim = await simulator(3)
    rec = await endpoint()
    a, b, c = sim.keys
    for key in sim.keys:
        sim.sim.set(
            key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None
        )
    config = write_config(
        tmp_path / "c.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=tmp_path / "unused.db",
        sinks=[{"name": "hook", "type": "webhook", "url": rec.url, **LOCAL_UNSIGNED}],
    )  # fmt: skip
    env = {"SPMON_STATE__URL": with_password(postgres_url)}
    log = tmp_path / "spmon.log"
    proc = await start(config, unused_tcp_port_factory(), log, env=env)
    try:
        await proc.wait_ready()
        await asyncio.sleep(1.5)  # every session baselined
        deadline = datetime.now(UTC) + timedelta(seconds=2)
        sim.sim.set(a, status="Closed")
        sim.sim.set(b, status="Closed", reviewRequired=True, reviewByDate=isoformat(deadline))
        await received(rec, 5)  # status a, status b, review_required b, review_by_date b, overdue b
        twin = await start(config, unused_tcp_port_factory(), tmp_path / "twin.log", env=env)
        await twin.wait_ready()  # a replica now, not refused
        assert await twin.stop() == 0, twin.output()
    finally:
        assert await proc.stop() == 0, proc.output()
    assert '"poller.restored"' in twin.output()
    assert not (tmp_path / "unused.db").exists()  # the database, not the file
    first = rec.ids()
    kinds = Counter(body["type"] for body in rec.bodies())
    assert kinds["review.overdue"] == 1 and kinds["session.status_changed"] == 2
    assert all(row[2] == "delivered" for row in outbox(postgres_url))

    sim.sim.set(c, status="Closed")  # while no spmon runs: the restart must still see it
    proc = await start(config, unused_tcp_port_factory(), log, env=env)
    try:
        await proc.wait_ready()
        await received(rec, 6)
        await asyncio.sleep(2.5)  # more polls: nothing else may arrive (no re-baseline, no repeat)
    finally:
        assert await proc.stop() == 0, proc.output()
    assert rec.ids()[:5] == first and len(rec.ids()) == len(set(rec.ids())) == 6
    (last,) = rec.bodies()[5:]
    assert last["type"] == "session.status_changed"
    assert last["data"]["session"]["session_sid"] == c.session_sid
    text = proc.output() + twin.output()
    assert PASSWORD not in text
    assert os.environ.get("SPMON_STATE__URL") is None  # the test did not leak it either
